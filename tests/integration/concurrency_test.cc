// Integration test: 16 concurrent clients x 4 jobs each against one server;
// every artifact downloads with a verified digest and a sample runs in ORT.
#include <atomic>
#include <filesystem>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "quantd/client/client.h"
#include "server_process.h"
#include "test_util.h"

namespace quantd::testing {
namespace {

TEST(ConcurrencyTest, SixteenClientsFourJobsEach) {
  TempDir tmp;
  ServerProcess server(tmp.path() + "/data", {"--workers", "2"});
  ASSERT_TRUE(server.Start().ok());
  constexpr int kClients = 16;
  constexpr int kJobs = 4;
  std::atomic<int> succeeded{0};
  std::vector<std::string> errors(kClients);
  std::vector<std::vector<std::string>> outputs(kClients);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      auto c = server.NewClient();  // each client its own channel
      for (int j = 0; j < kJobs; ++j) {
        v1::Recipe recipe;
        // Distinct jobs (different canonical recipes), alternating precisions.
        recipe.set_precision(j % 2 == 0 ? v1::PRECISION_FP16 : v1::PRECISION_INT8);
        recipe.add_node_block_list(absl::StrCat("client", i, "-job", j));
        client::QuantizeOptions options;
        options.labels["client"] = absl::StrCat(i);
        const std::string out = absl::StrCat(tmp.path(), "/out-", i, "-", j);
        auto result = c->Quantize({Gpt2Model()}, recipe, out, options);
        if (!result.ok()) {
          errors[i] = result.status().ToString();
          return;
        }
        outputs[i].push_back(result->download.paths[0]);
        ++succeeded;
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kClients; ++i) EXPECT_EQ(errors[i], "") << "client " << i;
  EXPECT_EQ(succeeded.load(), kClients * kJobs);
  v1::ListJobsRequest list;
  list.set_page_size(1000);
  auto jobs = server.NewClient()->ListJobs(list);
  ASSERT_TRUE(jobs.ok());
  EXPECT_EQ(jobs->jobs_size(), kClients * kJobs);
  for (const auto& job : jobs->jobs()) EXPECT_EQ(job.state(), v1::JOB_STATE_SUCCEEDED);
  // Spot-check artifacts in ONNX Runtime (fp16 and int8).
  ASSERT_FALSE(outputs[0].empty());
  EXPECT_TRUE(OrtOutputsMatch(Gpt2Model(), outputs[0][0], 0.99));
  EXPECT_TRUE(OrtOutputsMatch(Gpt2Model(), outputs[15][1], 0.95));
}

}  // namespace
}  // namespace quantd::testing
