// A minimal safetensors reader for tests: loads a whole file, parses the
// header with nlohmann::json (the parser MLX's loader uses) and hands out
// tensor bytes. Test-only; the library's reader lives in core/checkpoint.
#ifndef QUANTD_TESTS_CORE_MLX_SAFETENSORS_TEST_READER_H_
#define QUANTD_TESTS_CORE_MLX_SAFETENSORS_TEST_READER_H_

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace quantd::testing {

struct TestTensor {
  std::string dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // data-section offsets
  std::vector<uint8_t> bytes;
};

struct TestSafetensors {
  bool ok = false;
  std::string error;
  uint64_t header_len = 0;
  std::string header_text;
  std::map<std::string, std::string> metadata;
  std::map<std::string, TestTensor> tensors;
  uint64_t file_size = 0;
};

inline std::vector<uint8_t> ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

inline TestSafetensors ReadTestSafetensors(const std::string& path) {
  TestSafetensors st;
  std::vector<uint8_t> file = ReadAll(path);
  st.file_size = file.size();
  if (file.size() < 8) {
    st.error = "shorter than 8 bytes";
    return st;
  }
  for (int i = 0; i < 8; ++i) st.header_len |= static_cast<uint64_t>(file[i]) << (8 * i);
  if (8 + st.header_len > file.size()) {
    st.error = "header beyond the file";
    return st;
  }
  st.header_text.assign(reinterpret_cast<const char*>(file.data()) + 8, st.header_len);
  nlohmann::json h = nlohmann::json::parse(st.header_text, nullptr, false);
  if (!h.is_object()) {
    st.error = "header is not a JSON object";
    return st;
  }
  const uint64_t data = 8 + st.header_len;
  uint64_t covered = 0;
  for (auto it = h.begin(); it != h.end(); ++it) {
    if (it.key() == "__metadata__") {
      for (auto m = it->begin(); m != it->end(); ++m) st.metadata[m.key()] = m->get<std::string>();
      continue;
    }
    TestTensor t;
    t.dtype = (*it)["dtype"].get<std::string>();
    t.shape = (*it)["shape"].get<std::vector<int64_t>>();
    t.begin = (*it)["data_offsets"][0].get<uint64_t>();
    t.end = (*it)["data_offsets"][1].get<uint64_t>();
    if (t.end < t.begin || data + t.end > file.size()) {
      st.error = "bad data_offsets for " + it.key();
      return st;
    }
    t.bytes.assign(file.begin() + data + t.begin, file.begin() + data + t.end);
    covered += t.end - t.begin;
    st.tensors[it.key()] = std::move(t);
  }
  if (data + covered != file.size()) {
    st.error = "data section is not exactly covered by the tensors";
    return st;
  }
  st.ok = true;
  return st;
}

}  // namespace quantd::testing

#endif  // QUANTD_TESTS_CORE_MLX_SAFETENSORS_TEST_READER_H_
