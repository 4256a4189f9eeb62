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

}  // namespace quantd::api::wire

#endif  // QUANTD_API_WIRE_H_
