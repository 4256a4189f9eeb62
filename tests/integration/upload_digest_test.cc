// Where an upload's sha256 travels: in the header (known before the first
// byte; lets the server skip a model it has) or in the finish message
// (computed while the bytes stream, so the client reads each file once).
// Both are verified against the bytes received; a mismatch stores nothing.
// Also: a finished upload becomes the stored model by rename (same inode),
// never by a copy.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "quantd/core/base/sha256.h"
#include "test_util.h"

namespace quantd::testing {
namespace {
namespace fs = std::filesystem;

class UploadDigestTest : public ServerTest {
 protected:
  // A GGUF-looking body (the server infers the format from the magic).
  static std::string Body(size_t size, char fill) {
    std::string body(size, fill);
    body.replace(0, 4, "GGUF");
    return body;
  }

  static v1::UploadRequest Header(const std::string& upload_id, const std::string& body,
                                  const std::string& header_sha) {
    v1::UploadRequest r;
    r.mutable_header()->set_upload_id(upload_id);
    v1::FileInfo* f = r.mutable_header()->add_files();
    f->set_name("model.gguf");
    f->set_size_bytes(body.size());
    f->set_sha256(header_sha);
    return r;
  }

  // Streams `body` in 64 KiB chunks after a header carrying `header_sha`
  // (may be empty); then a finish message with `finish_sha` unless
  // `send_finish` is false. `before_finish` runs once every byte is sent.
  grpc::Status Upload(const std::string& upload_id, const std::string& body,
                      const std::string& header_sha, const std::string& finish_sha,
                      bool send_finish, v1::Model* model,
                      const std::function<void()>& before_finish = nullptr) {
    grpc::ClientContext ctx;
    auto writer = client_->stub()->UploadModel(&ctx, model);
    bool ok = writer->Write(Header(upload_id, body, header_sha));
    for (size_t pos = 0; ok && pos < body.size(); pos += 64 << 10) {
      v1::UploadRequest chunk;
      chunk.mutable_chunk()->set_offset(pos);
      chunk.mutable_chunk()->set_data(body.substr(pos, 64 << 10));
      ok = writer->Write(chunk);
    }
    if (ok && before_finish) before_finish();
    if (ok && send_finish) {
      v1::UploadRequest fin;
      fin.mutable_finish()->add_sha256(finish_sha);
      writer->Write(fin);
    }
    writer->WritesDone();
    return writer->Finish();
  }

  std::string DataDir() const { return tmp_.path() + "/data"; }

  // Stored models (directories under models/).
  int StoredModels() const {
    int n = 0;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(DataDir() + "/models", ec)) n += e.is_directory();
    return n;
  }

  // Part files of unfinished uploads.
  int PartFiles() const {
    int n = 0;
    std::error_code ec;
    for (const auto& e : fs::recursive_directory_iterator(DataDir() + "/uploads", ec)) {
      n += e.path().filename().string().rfind('f', 0) == 0 && e.is_regular_file();
    }
    return n;
  }

  // The part file of the only upload in progress, once it holds `size`
  // bytes (the server writes asynchronously); "" after ~10 s.
  std::string WaitForPart(uint64_t size) const {
    for (int i = 0; i < 200; ++i) {
      std::error_code ec;
      for (const auto& e : fs::recursive_directory_iterator(DataDir() + "/uploads", ec)) {
        if (e.path().filename() == "f0" && fs::file_size(e.path(), ec) == size) {
          return e.path().string();
        }
      }
      usleep(50 * 1000);
    }
    return "";
  }
};

TEST_F(UploadDigestTest, DigestInFinishMessageCommitsTheModelByRename) {
  const std::string body = Body(300 << 10, 'a');
  const std::string sha = core::Sha256Hex(body);
  ino_t part_inode = 0;
  v1::Model model;
  grpc::Status st = Upload("trailer-digest-good", body, "", sha, true, &model, [&] {
    const std::string part = WaitForPart(body.size());
    ASSERT_FALSE(part.empty());
    struct stat s;
    ASSERT_EQ(::stat(part.c_str(), &s), 0);
    part_inode = s.st_ino;
  });
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_NE(part_inode, 0u);
  ASSERT_EQ(model.files_size(), 1);
  EXPECT_EQ(model.files(0).sha256(), sha);
  EXPECT_EQ(model.model_id(), client::ModelIdOf({model.files(0)}));
  auto stored = client_->GetModel(model.model_id());
  ASSERT_TRUE(stored.ok()) << stored.status();
  // The stored file is the part file, renamed: same inode, no copy.
  const std::string path = absl::StrCat(DataDir(), "/models/", model.model_id().substr(7),
                                        "/model.gguf");
  struct stat s;
  ASSERT_EQ(::stat(path.c_str(), &s), 0) << path;
  EXPECT_EQ(s.st_ino, part_inode);
  std::ifstream in(path, std::ios::binary);
  EXPECT_EQ(std::string((std::istreambuf_iterator<char>(in)), {}), body);
}

TEST_F(UploadDigestTest, WrongDigestInFinishMessageIsDataLossAndStoresNothing) {
  const std::string body = Body(200 << 10, 'b');
  const std::string sha = core::Sha256Hex(body);
  const std::string wrong = core::Sha256Hex("something else");
  v1::Model model;
  grpc::Status st = Upload("trailer-digest-wrong", body, "", wrong, true, &model);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::DATA_LOSS) << st.error_message();
  EXPECT_EQ(st.error_message(),
            absl::StrCat("file model.gguf: sha256 mismatch (expected ", wrong,
                         ", received bytes hash to ", sha,
                         "); the upload was discarded: re-read the file and upload it again"));
  // Nothing stored, nothing left to resume, no bytes left behind.
  EXPECT_EQ(StoredModels(), 0);
  v1::FileInfo right;
  right.set_name("model.gguf");
  right.set_size_bytes(body.size());
  right.set_sha256(sha);
  EXPECT_EQ(client_->GetModel(client::ModelIdOf({right})).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(client_->GetUploadStatus("trailer-digest-wrong").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(PartFiles(), 0);
  // The server still serves, and the same bytes with the right digest commit.
  auto health = client_->Health();
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_TRUE(*health);
  st = Upload("trailer-digest-retry", body, "", sha, true, &model);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(model.model_id(), client::ModelIdOf({right}));
}

TEST_F(UploadDigestTest, DigestInHeaderIsStillAccepted) {
  const std::string body = Body(100 << 10, 'c');
  const std::string sha = core::Sha256Hex(body);
  // Digest up front, no finish message at all (the stream's end commits).
  v1::Model first;
  grpc::Status st = Upload("header-digest-only", body, sha, "", false, &first);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(first.files(0).sha256(), sha);
  // Digest up front and repeated in the finish message.
  const std::string body2 = Body(100 << 10, 'd');
  v1::Model second;
  st = Upload("header-digest-both", body2, core::Sha256Hex(body2), core::Sha256Hex(body2), true,
              &second);
  ASSERT_TRUE(st.ok()) << st.error_message();
  // A wrong digest up front is refused the same way.
  v1::Model bad;
  st = Upload("header-digest-wrong", Body(100 << 10, 'e'), core::Sha256Hex("not this body"), "",
              false, &bad);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::DATA_LOSS) << st.error_message();
  EXPECT_THAT(st.error_message(), ::testing::HasSubstr("sha256 mismatch"));
  EXPECT_EQ(StoredModels(), 2);
}

TEST_F(UploadDigestTest, KnownModelIsSkippedWithHeaderDigestAndDedupedWithFinishDigest) {
  const std::string body = Body(256 << 10, 'f');
  const std::string sha = core::Sha256Hex(body);
  v1::Model first;
  ASSERT_TRUE(Upload("dedup-first", body, "", sha, true, &first).ok());
  // Digest in the header: the server answers at once with the stored model.
  v1::Model skipped;
  grpc::Status st = Upload("dedup-header", body, sha, sha, true, &skipped);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(skipped.model_id(), first.model_id());
  EXPECT_EQ(skipped.upload_id(), "dedup-first");
  EXPECT_EQ(client_->GetUploadStatus("dedup-header").status().code(),
            absl::StatusCode::kNotFound);  // never opened
  // Digest in the finish message: the bytes travel, then the stored model
  // is kept and returned; still one copy in the store.
  v1::Model deduped;
  st = Upload("dedup-finish", body, "", sha, true, &deduped);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(deduped.model_id(), first.model_id());
  EXPECT_EQ(deduped.upload_id(), "dedup-first");
  EXPECT_EQ(StoredModels(), 1);
}

}  // namespace
}  // namespace quantd::testing
