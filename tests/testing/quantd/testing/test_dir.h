// TestDirTest: a fixture base that gives each test a fresh, empty directory
// of its own, <gtest's TempDir()>/<suite>.<test>, removed after the test.
// Subclasses that override SetUp call TestDirTest::SetUp() first.
#ifndef QUANTD_TESTING_TEST_DIR_H_
#define QUANTD_TESTING_TEST_DIR_H_

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"

namespace quantd::testing {

class TestDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::path(::testing::TempDir()) /
           (std::string(info->test_suite_name()) + "." + info->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // `name` inside the test's directory.
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }
  // A file's bytes ("" when it cannot be read).
  static std::string Read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  std::filesystem::path dir_;
};

}  // namespace quantd::testing

#endif  // QUANTD_TESTING_TEST_DIR_H_
