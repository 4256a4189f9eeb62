// Shared helpers for the integration tests.
#ifndef QUANTD_TESTS_INTEGRATION_TEST_UTIL_H_
#define QUANTD_TESTS_INTEGRATION_TEST_UTIL_H_

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "quantd/client/client.h"
#include "server_process.h"

namespace quantd::testing {

inline std::string Gpt2Model() {
  return TestData() + "/onnx/genai-tiny-random-gpt2-fp32/past.onnx";
}
inline std::vector<std::string> LlamaExtDataModel() {
  const std::string d = TestData() + "/onnx/genai-tiny-random-llama-fp16-extdata";
  return {d + "/model.onnx", d + "/model.onnx.data"};
}

inline v1::Recipe Fp16Recipe() {
  v1::Recipe r;
  r.set_precision(v1::PRECISION_FP16);
  return r;
}

inline v1::SubmitJobRequest SubmitRequest(const std::string& model_id, const v1::Recipe& recipe) {
  v1::SubmitJobRequest req;
  req.set_model_id(model_id);
  *req.mutable_recipe() = recipe;
  return req;
}

// Writes a chain-of-MatMul ONNX model (model.onnx + model.onnx.data) into
// `dir` with gen_chain_model.py; returns its two paths.
inline std::vector<std::string> MakeChainModel(const std::string& dir, int layers, int dim) {
  RunCommand(Python() + " " + SourceDir() + "/tests/integration/gen_chain_model.py " + dir + " " +
             std::to_string(layers) + " " + std::to_string(dim));
  return {dir + "/model.onnx", dir + "/model.onnx.data"};
}

// A fixture with a real `quantd serve` (2 workers, temporary data dir) on
// loopback and a client connected to it; prints the server's log when a test
// fails. (QUANTD_TEST_JOB_STORE=postgres: see ServerProcess.)
class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<ServerProcess>(tmp_.path() + "/data",
                                              std::vector<std::string>{"--workers", "2"});
    absl::Status st = server_->Start();
    ASSERT_TRUE(st.ok()) << st;
    client_ = server_->NewClient();
    ASSERT_NE(client_, nullptr);
  }
  void TearDown() override {
    if (HasFailure() && server_ != nullptr) std::cerr << server_->ReadLog();
  }

  TempDir tmp_;
  std::unique_ptr<ServerProcess> server_;
  std::unique_ptr<client::Client> client_;
};

// Polls GetJob until `pred` holds or ~`seconds` pass.
template <typename Pred>
bool WaitForJob(client::Client* c, const std::string& job_id, Pred pred, double seconds = 60) {
  for (int i = 0; i < seconds * 20; ++i) {
    auto job = c->GetJob(job_id);
    if (job.ok() && pred(*job)) return true;
    usleep(50 * 1000);
  }
  return false;
}

}  // namespace quantd::testing

#endif  // QUANTD_TESTS_INTEGRATION_TEST_UTIL_H_
