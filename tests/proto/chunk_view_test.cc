// ParseUploadChunk and ParseDownloadChunk read chunks from any slicing of
// their bytes, the same as protobuf would, and leave everything else to
// protobuf.
#include "quantd/api/chunk_view.h"

#include <algorithm>
#include <random>

#include "gtest/gtest.h"
#include "quantd/v1/quantd.pb.h"

namespace quantd::api {
namespace {

// `bytes` cut into slices at `cuts` (ascending offsets).
std::vector<grpc::Slice> Sliced(const std::string& bytes, std::vector<size_t> cuts) {
  std::vector<grpc::Slice> slices;
  size_t begin = 0;
  cuts.push_back(bytes.size());
  for (size_t end : cuts) {
    slices.emplace_back(bytes.data() + begin, end - begin);
    begin = end;
  }
  return slices;
}

std::string Joined(const ChunkView& chunk) {
  std::string s;
  for (absl::string_view p : chunk.data) s.append(p.data(), p.size());
  return s;
}

std::string ChunkBytes(uint64_t offset, const std::string& data) {
  v1::UploadRequest request;
  request.mutable_chunk()->set_offset(offset);
  request.mutable_chunk()->set_data(data);
  return request.SerializeAsString();
}

// Changes `bytes` at one to three places (a flipped byte, a cut, an inserted
// byte, or nothing: the valid encoding) and returns the result cut into
// slices at random places.
std::vector<grpc::Slice> MutatedAndSliced(std::mt19937* rng, std::string* bytes) {
  const int edits = 1 + static_cast<int>((*rng)() % 3);
  for (int e = 0; e < edits && !bytes->empty(); ++e) {
    const size_t at = (*rng)() % bytes->size();
    switch ((*rng)() % 4) {
      case 0:
        (*bytes)[at] = static_cast<char>((*rng)());
        break;
      case 1:
        bytes->resize(at);
        break;
      case 2:
        bytes->insert(at, 1, static_cast<char>((*rng)()));
        break;
      default:
        break;
    }
  }
  std::vector<size_t> cuts;
  if (!bytes->empty()) {
    for (int c = 0; c < 3; ++c) cuts.push_back((*rng)() % bytes->size());
    std::sort(cuts.begin(), cuts.end());
  }
  return Sliced(*bytes, cuts);
}

std::string DownloadBytes(uint64_t offset, const std::string& data) {
  v1::DownloadChunk chunk;
  chunk.set_offset(offset);
  chunk.set_data(data);
  return chunk.SerializeAsString();
}

TEST(UploadChunkViewTest, AChunkSplitAcrossSlicesAnywhere) {
  std::mt19937 rng(1);
  std::string data(5000, '\0');
  for (char& c : data) c = static_cast<char>(rng());
  const std::string bytes = ChunkBytes(1234567, data);
  // Every cut point once (the key, the length, the offset varint, the data,
  // and empty slices), then a few random slicings.
  for (size_t cut = 0; cut <= bytes.size(); ++cut) {
    ChunkView chunk;
    const std::vector<grpc::Slice> slices = Sliced(bytes, {cut, cut});  // outlives chunk's views
    ASSERT_TRUE(ParseUploadChunk(slices, &chunk)) << "cut at " << cut;
    EXPECT_EQ(chunk.offset, 1234567u);
    EXPECT_EQ(chunk.size, data.size());
    EXPECT_EQ(Joined(chunk), data) << "cut at " << cut;
  }
  for (int i = 0; i < 50; ++i) {
    std::vector<size_t> cuts;
    for (int j = 0; j < 8; ++j) cuts.push_back(rng() % bytes.size());
    std::sort(cuts.begin(), cuts.end());
    ChunkView chunk;
    const std::vector<grpc::Slice> slices = Sliced(bytes, cuts);
    ASSERT_TRUE(ParseUploadChunk(slices, &chunk));
    EXPECT_EQ(Joined(chunk), data);
  }
}

TEST(UploadChunkViewTest, OffsetZeroAndEmptyDataAreOmittedFields) {
  ChunkView chunk;
  const std::vector<grpc::Slice> first = Sliced(ChunkBytes(0, "abc"), {});
  ASSERT_TRUE(ParseUploadChunk(first, &chunk));
  EXPECT_EQ(chunk.offset, 0u);
  EXPECT_EQ(Joined(chunk), "abc");
  ASSERT_TRUE(ParseUploadChunk(Sliced(ChunkBytes(7, ""), {}), &chunk));
  EXPECT_EQ(chunk.offset, 7u);
  EXPECT_EQ(chunk.size, 0u);
}

TEST(UploadChunkViewTest, FieldsInAnyOrderLastOneWins) {
  // data, offset, data again: protobuf keeps the last of each.
  std::string bytes = "\x12\x0e";
  bytes +=
      "\x12\x03"
      "old";
  bytes += "\x08\x05";
  bytes +=
      "\x12\x03"
      "new";
  bytes += "\x08\x09";
  ASSERT_EQ(bytes.size(), 2u + 0x0e);
  v1::UploadRequest expected;
  ASSERT_TRUE(expected.ParseFromString(bytes));
  ChunkView chunk;
  const std::vector<grpc::Slice> slices = Sliced(bytes, {5});
  ASSERT_TRUE(ParseUploadChunk(slices, &chunk));
  EXPECT_EQ(chunk.offset, expected.chunk().offset());
  EXPECT_EQ(Joined(chunk), expected.chunk().data());
}

TEST(UploadChunkViewTest, OtherMessagesAreLeftToProtobuf) {
  v1::UploadRequest header;
  header.mutable_header()->set_upload_id("u");
  v1::UploadRequest finish;
  finish.mutable_finish()->add_sha256("ab");
  std::string unknown_field = ChunkBytes(1, "xy");
  unknown_field[1] += 2;
  unknown_field += "\x18\x01";  // UploadChunk field 3: unknown
  const std::string chunk_bytes = ChunkBytes(3, "data");
  for (const std::string& bytes :
       {header.SerializeAsString(), finish.SerializeAsString(), unknown_field,
        chunk_bytes + chunk_bytes,                       // two chunk fields: merged by protobuf
        chunk_bytes.substr(0, chunk_bytes.size() - 1),   // truncated
        std::string("\x12\x05\x08\xff\xff\xff\xff", 7),  // unterminated varint
        std::string()}) {
    ChunkView chunk;
    EXPECT_FALSE(ParseUploadChunk(Sliced(bytes, {}), &chunk));
  }
}

// Mutated encodings (flipped bytes, cuts, inserted bytes, random slicing):
// whenever ParseUploadChunk takes a message, protobuf parses it to the same
// chunk; it never takes what protobuf refuses or reads as something else.
TEST(UploadChunkViewTest, AgreesWithProtobufOnMutatedInput) {
  std::mt19937 rng(42);
  int taken = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string bytes = ChunkBytes(rng() % 3 == 0 ? 0 : rng(), std::string(rng() % 40, 'd'));
    const std::vector<grpc::Slice> slices = MutatedAndSliced(&rng, &bytes);
    ChunkView chunk;
    if (!ParseUploadChunk(slices, &chunk)) continue;
    ++taken;
    v1::UploadRequest expected;
    ASSERT_TRUE(expected.ParseFromString(bytes)) << "taken but protobuf refuses it";
    ASSERT_TRUE(expected.has_chunk());
    EXPECT_EQ(chunk.offset, expected.chunk().offset());
    EXPECT_EQ(Joined(chunk), expected.chunk().data());
    EXPECT_EQ(chunk.size, expected.chunk().data().size());
  }
  EXPECT_GT(taken, 1000);  // the valid and benignly changed ones
}

TEST(DownloadChunkViewTest, AChunkSplitAcrossSlicesAnywhere) {
  const std::string data = "the bytes of an artifact file";
  const std::string bytes = DownloadBytes(1ull << 33, data);
  for (size_t cut = 0; cut <= bytes.size(); ++cut) {
    const std::vector<grpc::Slice> slices = Sliced(bytes, {cut});  // the pieces point here
    ChunkView chunk;
    ASSERT_TRUE(ParseDownloadChunk(slices, &chunk)) << "cut at " << cut;
    EXPECT_EQ(chunk.offset, 1ull << 33);
    EXPECT_EQ(Joined(chunk), data);
    EXPECT_EQ(chunk.size, data.size());
  }
  ChunkView chunk;  // offset 0 and empty data are omitted fields
  ASSERT_TRUE(ParseDownloadChunk(Sliced(DownloadBytes(0, ""), {}), &chunk));
  EXPECT_EQ(chunk.offset, 0u);
  EXPECT_EQ(chunk.size, 0u);
}

TEST(DownloadChunkViewTest, TheFirstMessageAndOthersAreLeftToProtobuf) {
  v1::DownloadChunk first;
  first.mutable_file()->set_name("model.onnx");
  first.set_data("abc");
  std::string unknown = DownloadBytes(5, "xy") + "\x20\x01";  // field 4: unknown
  const std::string bytes = DownloadBytes(9, "data");
  for (const std::string& b :
       {first.SerializeAsString(), unknown, bytes.substr(0, bytes.size() - 1),  // truncated
        std::string("\x10\xff\xff", 3)}) {  // unterminated varint
    ChunkView chunk;
    EXPECT_FALSE(ParseDownloadChunk(Sliced(b, {}), &chunk));
  }
}

TEST(DownloadChunkViewTest, AgreesWithProtobufOnMutatedInput) {
  std::mt19937 rng(7);
  int taken = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string bytes = DownloadBytes(rng() % 3 == 0 ? 0 : rng(), std::string(rng() % 40, 'd'));
    const std::vector<grpc::Slice> slices = MutatedAndSliced(&rng, &bytes);
    ChunkView chunk;
    if (!ParseDownloadChunk(slices, &chunk)) continue;
    ++taken;
    v1::DownloadChunk expected;
    ASSERT_TRUE(expected.ParseFromString(bytes)) << "taken but protobuf refuses it";
    EXPECT_FALSE(expected.has_file());
    EXPECT_EQ(chunk.offset, expected.offset());
    EXPECT_EQ(Joined(chunk), expected.data());
    EXPECT_EQ(chunk.size, expected.data().size());
  }
  EXPECT_GT(taken, 1000);
}

}  // namespace
}  // namespace quantd::api
