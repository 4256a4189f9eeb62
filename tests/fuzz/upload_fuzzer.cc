// The upload protocol and its records: the input is a stream of
// length-delimited quantd.v1.UploadRequest messages fed to the UploadStore
// as one UploadModel stream does (header, chunks, finish), after which the
// upload is aborted and expired; then the header bytes are planted as an
// upload record and the store reopened (start-up recovery reads them).
#include <cstdint>

#include "fuzz_util.h"
#include "google/protobuf/io/coded_stream.h"
#include "quantd/core/base/sha256.h"
#include "quantd/server/blob_store.h"
#include "quantd/server/clock.h"
#include "quantd/server/upload_store.h"

namespace {

class FixedClock : public quantd::server::Clock {
 public:
  int64_t NowUnixMs() override { return 1'700'000'000'000; }
  double NowSteadySeconds() override { return 0; }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace quantd;
  auto& scratch = fuzz::Scratch::Get();
  scratch.Reset();
  FixedClock clock;
  server::BlobStoreOptions blob_options;
  blob_options.root = scratch.dir() + "/store";
  blob_options.min_free_bytes = 0;
  blob_options.max_store_bytes = 1 << 20;
  server::UploadStoreOptions upload_options;
  upload_options.max_upload_bytes = 1 << 20;
  std::string first_header;
  {
    auto blobs = server::BlobStore::Open(blob_options);
    if (!blobs.ok()) return 0;
    auto uploads = server::UploadStore::Open(blobs->get(), upload_options, &clock);
    if (!uploads.ok()) return 0;
    google::protobuf::io::CodedInputStream in(data, static_cast<int>(size));
    std::unique_ptr<server::UploadWriter> writer;
    std::string upload_id;
    for (int i = 0; i < 64; ++i) {
      uint32_t n = 0;
      if (!in.ReadVarint32(&n)) break;
      std::string bytes;
      if (!in.ReadString(&bytes, static_cast<int>(n))) break;
      v1::UploadRequest req;
      if (!req.ParseFromString(bytes)) break;
      if (req.has_header()) {
        if (first_header.empty()) first_header = req.header().SerializeAsString();
        (void)(*uploads)->FindCommittedModel(req.header());
        auto w = (*uploads)->OpenUpload(req.header());
        if (w.ok()) {
          writer = *std::move(w);
          upload_id = writer->upload_id();
        }
      } else if (req.has_chunk() && writer != nullptr) {
        (void)writer->Append(req.chunk().offset(), req.chunk().data());
      } else if (req.has_finish() && writer != nullptr) {
        (void)writer->Finish(req.finish());
      }
      if (!upload_id.empty()) (void)(*uploads)->GetUploadStatus(upload_id);
    }
    writer.reset();
    if (!upload_id.empty()) (void)(*uploads)->AbortUpload(upload_id);
    (void)(*uploads)->ExpireUploads(-1);
  }
  // The header bytes as a record on disk, read back by start-up recovery.
  if (!first_header.empty()) {
    const std::string dir =
        blob_options.root + "/uploads/" + core::Sha256Hex(std::string("fuzz-upload")).substr(0, 32);
    std::filesystem::create_directories(dir);
    fuzz::WriteFile(dir + "/header.pb", first_header);
    fuzz::WriteFile(dir + "/f0", first_header);
    std::filesystem::create_directories(dir + "/model");
    fuzz::WriteFile(dir + "/done.pending", first_header);
    auto blobs = server::BlobStore::Open(blob_options);
    if (!blobs.ok()) return 0;
    auto uploads = server::UploadStore::Open(blobs->get(), upload_options, &clock);
    if (uploads.ok()) (void)(*uploads)->GetUploadStatus("fuzz-upload");
  }
  return 0;
}
