// Protobuf wire-format helpers (quantd/api/wire.h).
#include "quantd/api/wire.h"

namespace quantd::api::wire {

size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

void PutVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

void PutKey(int field, uint8_t wire_type, std::string* out) {
  PutVarint((static_cast<uint64_t>(field) << 3) | wire_type, out);
}

uint64_t ChunkFieldsSize(int offset_field, int data_field, uint64_t offset, uint64_t n) {
  const auto key = [](int field, uint8_t type) {
    return VarintSize((static_cast<uint64_t>(field) << 3) | type);
  };
  return (offset == 0 ? 0 : key(offset_field, kVarint) + VarintSize(offset)) +
         (n == 0 ? 0 : key(data_field, kLengthDelimited) + VarintSize(n) + n);
}

void PutChunkFields(int offset_field, int data_field, uint64_t offset, uint64_t n,
                    std::string* out) {
  if (offset != 0) {
    PutKey(offset_field, kVarint, out);
    PutVarint(offset, out);
  }
  if (n != 0) {
    PutKey(data_field, kLengthDelimited, out);
    PutVarint(n, out);
  }
}

}  // namespace quantd::api::wire
