// Helpers shared by the libFuzzer targets: a scratch directory per process
// and the split of one fuzz input into several files.
//
// Input layout for multi-file targets: [u32 little-endian n][n bytes][rest],
// i.e. the first file's length, the first file, then the second file. A
// length past the end takes everything.
//
// Thread safety: none needed (libFuzzer runs one input at a time).
#ifndef QUANTD_TESTS_FUZZ_FUZZ_UTIL_H_
#define QUANTD_TESTS_FUZZ_FUZZ_UTIL_H_

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"

namespace quantd::fuzz {

// A directory of this process under $TMPDIR (/tmp), created on first use,
// emptied by Reset(), removed at exit.
class Scratch {
 public:
  static Scratch& Get() {
    static Scratch* scratch = new Scratch();  // lives for the process
    return *scratch;
  }
  const std::string& dir() const { return dir_; }
  void Reset() {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir_, ec)) {
      std::filesystem::remove_all(e.path(), ec);
    }
  }

 private:
  Scratch() {
    const char* tmp = std::getenv("TMPDIR");
    std::string t = std::string(tmp != nullptr ? tmp : "/tmp") + "/quantd-fuzz-XXXXXX";
    char* made = mkdtemp(t.data());
    dir_ = made != nullptr ? made : "/tmp";
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(Get().dir_, ec);
    });
  }
  std::string dir_;
};

inline void WriteFile(const std::string& path, absl::string_view bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::pair<absl::string_view, absl::string_view> SplitTwo(const uint8_t* data, size_t size) {
  absl::string_view all(reinterpret_cast<const char*>(data), size);
  if (all.size() < 4) return {all, {}};
  uint32_t n = 0;
  std::memcpy(&n, all.data(), 4);  // little-endian hosts only (x86-64)
  all.remove_prefix(4);
  if (n >= all.size()) return {all, {}};
  return {all.substr(0, n), all.substr(n)};
}

}  // namespace quantd::fuzz

#endif  // QUANTD_TESTS_FUZZ_FUZZ_UTIL_H_
