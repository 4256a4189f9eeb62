#include "quantd/server/crash_record.h"

#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <thread>

#include "gtest/gtest.h"
#include "quantd/server/ids.h"

namespace quantd::server {
namespace {
namespace fs = std::filesystem;

// Recurses until the stack overflows (the optimizer cannot drop the frame:
// the buffer is used after the call).
int Overflow(int depth) {
  volatile char frame[1024];
  frame[0] = static_cast<char>(depth);
  return Overflow(depth + 1) + frame[0];
}

class CrashRecorderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("crash-" + RandomHex(6))).string();
    fs::create_directories(dir_);
    path_ = dir_ + "/crash.record";
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Runs `fault` in a child process whose worker thread runs "job-faulty"
  // beside a thread running "job-victim"; returns the child's wait status.
  template <typename Fault>
  int RunChild(Fault fault) {
    pid_t pid = fork();
    if (pid == 0) {
      auto recorder = CrashRecorder::Install(path_, 4);
      if (!recorder.ok()) _exit(3);
      std::thread victim([&] {
        (*recorder)->BeginJob("job-victim");
        pause();
      });
      std::thread worker([&] {
        usleep(50 * 1000);
        (*recorder)->BeginJob("job-faulty");
        fault();
      });
      worker.join();
      _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
  }

  std::string dir_;
  std::string path_;
};

TEST_F(CrashRecorderTest, AStackOverflowIsRecordedWithTheFaultingJob) {
  int status = RunChild([] { Overflow(0); });
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGSEGV);
  CrashRecord record = ReadCrashRecord(path_);
  EXPECT_EQ(record.signal, SIGSEGV);
  EXPECT_EQ(record.faulting_job, "job-faulty");
  EXPECT_EQ(record.running.size(), 2u);
  RemoveCrashRecord(path_);
  EXPECT_EQ(ReadCrashRecord(path_).signal, 0);
}

TEST_F(CrashRecorderTest, AnAbortIsRecordedAndStillKillsTheProcess) {
  int status = RunChild([] { std::abort(); });
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGABRT);
  CrashRecord record = ReadCrashRecord(path_);
  EXPECT_EQ(record.signal, SIGABRT);
  EXPECT_EQ(record.faulting_job, "job-faulty");
}

TEST_F(CrashRecorderTest, AKillLeavesNoRecord) {
  int status = RunChild([] { raise(SIGKILL); });
  ASSERT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(ReadCrashRecord(path_).signal, 0);
}

}  // namespace
}  // namespace quantd::server
