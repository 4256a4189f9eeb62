// The protobuf wire format's few pieces that the transfer paths write by
// hand (protobuf.dev/programming-guides/encoding): a chunk message goes to
// gRPC as a small prefix (the keys and lengths, encoded here) followed by
// the chunk's bytes referenced where they lie, never copied into a message.
// A field's key is (number << 3) | wire type; lengths and integers are
// varints.
//
// Thread safety: pure functions.
#ifndef QUANTD_API_WIRE_H_
#define QUANTD_API_WIRE_H_

#include <cstddef>
#include <cstdint>
#include <string>

namespace quantd::api::wire {

constexpr uint8_t kVarint = 0;
constexpr uint8_t kLengthDelimited = 2;

// Bytes of `v` as a varint (1 to 10).
size_t VarintSize(uint64_t v);
// Appends `v` as a varint.
void PutVarint(uint64_t v, std::string* out);
// Appends the key of field `field` with `wire_type`.
void PutKey(int field, uint8_t wire_type, std::string* out);

// A chunk's two fields, `offset_field` (uint64 `offset`) and `data_field`
// (`n` bytes), as protobuf writes them (proto3: a zero offset and empty
// data are left out). ChunkFieldsSize is their encoded size, the data
// included; PutChunkFields appends everything before the data bytes.
uint64_t ChunkFieldsSize(int offset_field, int data_field, uint64_t offset, uint64_t n);
void PutChunkFields(int offset_field, int data_field, uint64_t offset, uint64_t n,
                    std::string* out);

}  // namespace quantd::api::wire

#endif  // QUANTD_API_WIRE_H_
