#include "commands.h"

#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "exit_codes.h"
#include "flag_parser.h"
#include "interrupter.h"
#include "json_output.h"
#include "quantd/api/recipe_proto.h"
#include "quantd/core/base/atomic_file.h"
#include "quantd/core/base/status_macros.h"
#include "quantd/core/recipe.h"
#include "quantd/core/recipe_flags.h"
#include "quantd/core/report.h"
#include "transfer.h"

#ifndef QUANTD_VERSION
#define QUANTD_VERSION "dev"
#endif

namespace quantd::quantctl {
namespace {

// ------------------------------------------------------------------ helpers

absl::Status Usage(absl::string_view message) { return absl::InvalidArgumentError(message); }

bool IsFinal(v1::JobState s) {
  return s == v1::JOB_STATE_SUCCEEDED || s == v1::JOB_STATE_FAILED || s == v1::JOB_STATE_CANCELLED;
}

// A failed/cancelled job as a status with exit code 3.
absl::Status JobFailure(const v1::Job& job) {
  std::string msg = absl::StrCat("job ", job.job_id(), " ", StateName(job.state()));
  if (!job.error().message().empty()) {
    absl::StrAppend(&msg, ": ", job.error().code(), ": ", job.error().message());
  }
  return JobOutcome(absl::AbortedError(msg));
}

std::string FormatTime(int64_t unix_ms) {
  if (unix_ms <= 0) return "-";
  std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm;
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%SZ", &tm);
  return buf;
}

std::string RecipeSummary(const v1::Recipe& r) {
  if (!r.gguf_type().empty()) return absl::StrCat("gguf ", r.gguf_type());
  if (r.format() == v1::MODEL_FORMAT_MLX) {
    auto recipe = api::RecipeFromProto(r);
    if (recipe.ok()) {
      return absl::StrCat("mlx ", core::MlxPrecisionName(*recipe), " g", recipe->group_size);
    }
  }
  std::string s = absl::AsciiStrToLower(v1::Precision_Name(r.precision()));
  if (absl::StartsWith(s, "precision_")) s = s.substr(10);
  if (r.precision() == v1::PRECISION_INT4) absl::StrAppend(&s, " b", r.block_size());
  if (!r.preset().empty()) absl::StrAppend(&s, " (", r.preset(), ")");
  return s;
}

std::string LabelsText(const google::protobuf::Map<std::string, std::string>& labels) {
  std::vector<std::string> kv;
  for (const auto& [k, v] : labels) kv.push_back(absl::StrCat(k, "=", v));
  std::sort(kv.begin(), kv.end());
  return kv.empty() ? "-" : absl::StrJoin(kv, ",");
}

std::string ProgressText(const v1::Job& job) {
  const auto& p = job.progress();
  if (job.state() == v1::JOB_STATE_RUNNING) {
    std::string s = p.phase().empty() ? "running" : p.phase();
    if (p.tensors_total() > 0) absl::StrAppend(&s, " ", p.tensors_done(), "/", p.tensors_total());
    return s;
  }
  return "-";
}

absl::StatusOr<v1::JobState> ParseState(absl::string_view s) {
  std::string up = absl::AsciiStrToUpper(s);
  if (!absl::StartsWith(up, "JOB_STATE_")) up = absl::StrCat("JOB_STATE_", up);
  v1::JobState state;
  if (!v1::JobState_Parse(up, &state) || state == v1::JOB_STATE_UNSPECIFIED) {
    return Usage(
        absl::StrCat("--state '", s, "': use queued, running, succeeded, failed or cancelled"));
  }
  return state;
}

absl::Status WriteTextFile(const std::string& path, const std::string& text) {
  absl::Status st = core::WriteFileAtomically(path, text);
  if (!st.ok()) return absl::DataLossError(st.message());  // exit code 6
  return absl::OkStatus();
}

constexpr char kNeedOneJob[] = "need exactly one JOB (see --help)";

// Parses the command's flags; anything but `count` positional arguments is
// the usage error `usage_error`. Returns the positional arguments.
absl::StatusOr<std::vector<std::string>> ParseArgs(const FlagParser& flags,
                                                   const std::vector<std::string>& args,
                                                   size_t count, absl::string_view usage_error) {
  std::vector<std::string> positional;
  QUANTD_RETURN_IF_ERROR(flags.Parse(args, &positional));
  if (positional.size() != count) return Usage(usage_error);
  return positional;
}

// Parses recipe flags then the command's own flags (one positional argument,
// else `usage_error`); validates the recipe. Returns the positional argument.
absl::StatusOr<std::string> ParseRecipeAndFlags(const std::vector<std::string>& args,
                                                const FlagParser& flags, core::Recipe* recipe,
                                                absl::string_view usage_error) {
  std::vector<std::string> rest, positional;
  if (auto st = core::ParseRecipeFlags(args, recipe, &rest); !st.ok()) return Usage(st.message());
  QUANTD_RETURN_IF_ERROR(flags.Parse(rest, &positional));
  if (auto st = core::ValidateRecipe(*recipe); !st.ok()) return Usage(st.message());
  if (positional.size() != 1) return Usage(usage_error);
  return positional[0];
}

// The job flags `quantize` and `submit` share.
struct JobFlags {
  std::vector<std::string> data;  // extra files to upload with a local INPUT
  std::vector<std::string> labels;
  int priority = 0;
  std::string idempotency_key;

  void Register(FlagParser* flags) {
    flags->Repeated({"--data"}, &data);
    flags->Repeated({"--label"}, &labels);
    flags->Int({"--priority"}, &priority);
    flags->String({"--idempotency-key"}, &idempotency_key);
  }
  // The SubmitJobRequest for `recipe` (model_id still unset). InvalidArgument
  // for a malformed --label.
  absl::StatusOr<v1::SubmitJobRequest> Request(const core::Recipe& recipe) const {
    QUANTD_ASSIGN_OR_RETURN(auto parsed, ParseLabels(labels));
    v1::SubmitJobRequest req;
    *req.mutable_recipe() = api::RecipeToProto(recipe);
    req.set_priority(priority);
    req.set_idempotency_key(idempotency_key);
    for (const auto& [k, v] : parsed) (*req.mutable_labels())[k] = v;
    return req;
  }
};

// Whether recipe.imatrix is a file on this machine (not "model:<id>" and
// not the name of a file the stored model already has).
bool LocalImatrix(const core::Recipe& recipe) {
  std::error_code ec;
  return !recipe.imatrix.empty() && !absl::StartsWith(recipe.imatrix, "model:") &&
         std::filesystem::is_regular_file(recipe.imatrix, ec);
}

// A local importance matrix travels with the model's upload as a named
// extra file, and the recipe names it by its file name.
void AttachLocalImatrix(core::Recipe* recipe, std::vector<std::string>* extra) {
  if (!LocalImatrix(*recipe)) return;
  extra->push_back(recipe->imatrix);
  recipe->imatrix = std::filesystem::path(recipe->imatrix).filename().string();
}

// A checkpoint folder's job is named after the folder uploaded now (the
// server may hold the same files under the name of an earlier upload),
// unless --model-name chose a name.
void NameCheckpointJob(const UploadResult& uploaded, v1::SubmitJobRequest* req) {
  if (!uploaded.model_name.empty() && req->recipe().model_name().empty()) {
    req->mutable_recipe()->set_model_name(uploaded.model_name);
  }
}

// The job, which must have SUCCEEDED: a failed or cancelled one is a job
// failure (exit 3); one not final yet is FailedPrecondition with `not_yet`.
absl::StatusOr<v1::Job> SucceededJob(Session* session, const std::string& job_id,
                                     absl::string_view not_yet) {
  QUANTD_ASSIGN_OR_RETURN(v1::Job job, session->client().GetJob(job_id));
  if (job.state() == v1::JOB_STATE_FAILED || job.state() == v1::JOB_STATE_CANCELLED) {
    return JobFailure(job);
  }
  if (job.state() != v1::JOB_STATE_SUCCEEDED) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", job.job_id(), " is ", StateName(job.state()), "; ", not_yet));
  }
  return job;
}

// Prints the command's result: `json` with --json, else the human `text`.
absl::Status PrintResult(CommandContext& ctx, const std::string& json, const std::string& text) {
  if (ctx.json()) {
    ctx.PrintJson(json);
  } else {
    ctx.Print(text);
  }
  return absl::OkStatus();
}

// Watches `job_id` until it ends, rendering progress. With `cancel_on_interrupt`
// Ctrl-C cancels the job on the server and waits for it to stop; otherwise
// Ctrl-C detaches (the job keeps running).
absl::StatusOr<v1::Job> WatchJob(CommandContext& ctx, Session* session, const std::string& job_id,
                                 bool cancel_on_interrupt) {
  Interrupter::SetHandler([&ctx, session, job_id, cancel_on_interrupt] {
    if (cancel_on_interrupt) {
      ctx.progress().Line(
          absl::StrCat("interrupted: cancelling job ", job_id, " (Ctrl-C again to exit at once)"));
      auto job = session->client().Cancel(job_id);
      if (!job.ok()) {
        std::fprintf(stderr, "quantctl: cancelling %s failed: %s\n", job_id.c_str(),
                     std::string(job.status().message()).c_str());
        std::fflush(stdout);
        std::fflush(stderr);
        ::_exit(ExitCodeFor(job.status()));
      }
      // The watch sees the CANCELLED event and returns.
    } else {
      ctx.progress().Line(absl::StrCat("detached: job ", job_id,
                                       " keeps running; follow it with `quantctl watch ", job_id,
                                       "`"));
      session->Interrupt();  // the watch returns CANCELLED: exit 130
    }
  });
  auto job = session->Watch(job_id, [&ctx](const v1::Job& j) { ctx.progress().Job(j); });
  Interrupter::SetHandler(nullptr);
  ctx.progress().Finish();
  return job;
}

// ------------------------------------------------------------------ quantize

// A job report's plan in the core's terms, for core::FormatPlan.
std::vector<core::PlanEntry> PlanFromProto(const v1::Report& report) {
  std::vector<core::PlanEntry> plan;
  for (const v1::PlanEntry& p : report.plan()) {
    core::PlanEntry& e = plan.emplace_back();
    e.name = p.name();
    e.source_name = p.source_name();
    e.shape.assign(p.shape().begin(), p.shape().end());
    e.type_before = p.type_before();
    e.type_after = p.type_after();
    e.bytes_after = p.bytes_after();
    e.importance = p.importance();
    e.rule = p.rule();
    e.split = p.split();
  }
  return plan;
}

constexpr char kQuantizeHelp[] =
    "usage: quantctl quantize INPUT -o OUTPUT [recipe flags] [flags]\n"
    "\n"
    "The one-shot path: uploads INPUT (skipped when the server already has the same\n"
    "content; ONNX external data files named by the model are found next to it and\n"
    "uploaded with it; a Hugging Face checkpoint folder uploads the files a\n"
    "conversion reads and says which it skips), submits a job, watches it, downloads the result "
    "and verifies\n"
    "every file's sha256. OUTPUT is written atomically; ONNX external data goes to\n"
    "OUTPUT.data (the model is rewritten to point at it). A broken upload or\n"
    "download resumes when the same command runs again. Ctrl-C cancels the job on\n"
    "the server (exit 3) unless --detach (exit 130; the job keeps running).\n"
    "\n"
    "Flags:\n"
    "  -o, --output PATH          output model file, or folder for --format mlx (required,\n"
    "                             except with --dry-run, which prints the GGUF plan instead)\n"
    "  --data FILE                extra file to upload with the model (repeatable)\n"
    "  --label KEY=VALUE          job label (repeatable)\n"
    "  --priority N               -100..100, higher runs first (default 0)\n"
    "  --idempotency-key KEY      a retried submit with the same key returns the same job\n"
    "  --detach                   Ctrl-C leaves the job running instead of cancelling it\n"
    "  --report PATH              also write the quality report (JSON) there\n"
    "\n"
    "Examples:\n"
    "  # phones: INT4 MatMulNBits, block 32, LM head INT8\n"
    "  quantctl quantize phi-3.5-mini/model.onnx -o phone/model.onnx --preset mobile-int4\n"
    "  # IoT boxes: INT4, block 128, smallest file\n"
    "  quantctl quantize model.onnx -o iot/model.onnx --preset iot-int4\n"
    "  # AI PCs: INT8 dynamic, or FP16 for GPUs/NPUs\n"
    "  quantctl quantize model.onnx -o aipc/model-int8.onnx --preset aipc-int8\n"
    "  quantctl quantize model.onnx -o aipc/model-fp16.onnx --precision fp16\n"
    "  # explicit knobs, keep the LM head in INT8\n"
    "  quantctl quantize model.onnx -o out.onnx --precision int4 --block-size 64 --lm-head int8\n"
    "  # llama.cpp\n"
    "  quantctl quantize model-f16.gguf -o model-q4km.gguf --gguf-type Q4_K_M\n"
    "  # the per-tensor plan and output size, nothing written or downloaded\n"
    "  quantctl quantize model-f16.gguf --gguf-type IQ4_XS --imatrix imatrix.dat --dry-run\n"
    "  # a Hugging Face checkpoint folder (general.name comes from the folder's name)\n"
    "  quantctl quantize ./Phi-3.5-mini-instruct -o phi35-f16.gguf --gguf-type F16\n"
    "  # Apple MLX folder (4 bits, group 64) from a checkpoint folder\n"
    "  quantctl quantize ./Phi-3.5-mini-instruct -o phi35-mlx/ --format mlx\n"
    "  # in CI: machine-readable result\n"
    "  quantctl --server quantd:7443 quantize m.onnx -o m4.onnx --preset mobile-int4 --json\n";

absl::Status QuantizeCmd(CommandContext& ctx, const std::vector<std::string>& args) {
  core::Recipe recipe;
  std::string output, report_path;
  JobFlags job_flags;
  bool detach = false;
  FlagParser flags;
  flags.String({"-o", "--output"}, &output);
  job_flags.Register(&flags);
  flags.Bool({"--detach"}, &detach);
  flags.String({"--report"}, &report_path);
  QUANTD_ASSIGN_OR_RETURN(
      std::string input,
      ParseRecipeAndFlags(args, flags, &recipe, "need exactly one INPUT (see --help)"));
  if (output.empty() && !recipe.dry_run) return Usage("need -o OUTPUT (see --help)");
  if (!output.empty() && recipe.dry_run) {
    return Usage("--dry-run writes nothing: drop -o OUTPUT (the plan is printed)");
  }
  AttachLocalImatrix(&recipe, &job_flags.data);
  QUANTD_ASSIGN_OR_RETURN(v1::SubmitJobRequest req, job_flags.Request(recipe));

  QUANTD_ASSIGN_OR_RETURN(UploadResult uploaded, UploadModel(ctx, input, job_flags.data, {}));
  QUANTD_ASSIGN_OR_RETURN(Session * session, ctx.session());
  req.set_model_id(uploaded.model.model_id());
  NameCheckpointJob(uploaded, &req);
  QUANTD_ASSIGN_OR_RETURN(v1::Job job, session->client().Submit(req));
  ctx.progress().Line(
      absl::StrCat("submitted job ", job.job_id(), " (", RecipeSummary(job.recipe()), ")"));

  auto final_job = WatchJob(ctx, session, job.job_id(), !detach);
  if (!final_job.ok()) {
    if (final_job.status().code() == absl::StatusCode::kCancelled) {
      return absl::CancelledError(absl::StrCat("detached from job ", job.job_id()));
    }
    return final_job.status();
  }
  auto result = [&](const std::vector<std::string>& files) {
    return JsonObject()
        .Raw("model", MessageJson(uploaded.model))
        .Bool("upload_skipped", uploaded.skipped)
        .Raw("skipped_files", JsonStringArray(uploaded.skipped_files))
        .Raw("job", MessageJson(*final_job))
        .Raw("output_files", JsonStringArray(files))
        .Build();
  };
  if (final_job->state() != v1::JOB_STATE_SUCCEEDED) {
    if (ctx.json()) ctx.PrintJson(result({}));
    return JobFailure(*final_job);
  }
  if (recipe.dry_run) {
    if (!report_path.empty()) {
      QUANTD_RETURN_IF_ERROR(WriteTextFile(report_path, MessageJson(final_job->report()) + "\n"));
    }
    if (ctx.json()) {
      ctx.PrintJson(result({}));
    } else if (!ctx.quiet()) {
      const v1::Report& r = final_job->report();
      ctx.Print(absl::StrCat(
          core::FormatPlan(PlanFromProto(r)),
          absl::StrFormat("dry run (job %s): %d of %d tensors would be "
                          "converted, %s in %d file(s); nothing written",
                          final_job->job_id(), r.tensors_converted(), r.tensors_total(),
                          HumanBytes(r.output_file_bytes()), r.output_files_size())));
    }
    return absl::OkStatus();
  }
  QUANTD_ASSIGN_OR_RETURN(std::vector<std::string> files,
                          DownloadArtifact(ctx, *final_job, output));
  if (!report_path.empty()) {
    QUANTD_RETURN_IF_ERROR(WriteTextFile(report_path, MessageJson(final_job->report()) + "\n"));
  }
  if (ctx.json()) {
    ctx.PrintJson(result(files));
  } else if (!ctx.quiet()) {
    const v1::Report& r = final_job->report();
    ctx.Print(absl::StrFormat("wrote %s: %d of %d tensors converted, %s -> %s, job %s in %.2f s",
                              absl::StrJoin(files, " + "), r.tensors_converted(), r.tensors_total(),
                              HumanBytes(r.bytes_before()), HumanBytes(r.bytes_after()),
                              final_job->job_id(), r.seconds()));
  }
  return absl::OkStatus();
}

// ------------------------------------------------------------------ upload

constexpr char kUploadHelp[] =
    "usage: quantctl upload INPUT [--data FILE]... [--label KEY=VALUE]...\n"
    "\n"
    "Uploads a model (ONNX with its external data files, GGUF, or a Hugging Face\n"
    "checkpoint folder) and prints its id (sha256:<hex> of the files). Skipped when\n"
    "the server already has the content; a broken upload resumes when the same\n"
    "command runs again. Of a checkpoint folder, only the files a conversion reads\n"
    "are uploaded (config.json, generation_config.json, the safetensors weights and\n"
    "index, the tokenizer files); the others (README.md, .git/, *.bin, *.pth, ...)\n"
    "are skipped and listed. The folder's name goes with it as the model's name.\n"
    "\n"
    "Flags:\n"
    "  --data FILE                extra file to upload with the model (repeatable)\n"
    "  --label KEY=VALUE          model label (repeatable)\n"
    "\n"
    "Examples:\n"
    "  MODEL=$(quantctl upload model.onnx)\n"
    "  quantctl upload ./Phi-3.5-mini-instruct\n"
    "  quantctl upload model.onnx --json | jq -r .model.model_id\n";

absl::Status UploadCmd(CommandContext& ctx, const std::vector<std::string>& args) {
  std::vector<std::string> data, label_flags;
  FlagParser flags;
  flags.Repeated({"--data"}, &data);
  flags.Repeated({"--label"}, &label_flags);
  QUANTD_ASSIGN_OR_RETURN(auto positional,
                          ParseArgs(flags, args, 1, "need exactly one INPUT (see --help)"));
  QUANTD_ASSIGN_OR_RETURN(auto labels, ParseLabels(label_flags));
  QUANTD_ASSIGN_OR_RETURN(UploadResult uploaded, UploadModel(ctx, positional[0], data, labels));
  return PrintResult(ctx,
                     JsonObject()
                         .Raw("model", MessageJson(uploaded.model))
                         .Bool("upload_skipped", uploaded.skipped)
                         .Raw("skipped_files", JsonStringArray(uploaded.skipped_files))
                         .Build(),
                     uploaded.model.model_id());
}

// ------------------------------------------------------------------ submit

constexpr char kSubmitHelp[] =
    "usage: quantctl submit MODEL_ID|INPUT [recipe flags] [flags]\n"
    "\n"
    "Submits a job for an uploaded model (sha256:...) or for a local file (uploaded\n"
    "first) and prints the job id. Does not wait: follow it with `watch`.\n"
    "Submitting the same model and recipe again returns the existing job.\n"
    "\n"
    "Flags:\n"
    "  --data FILE                extra file to upload with a local INPUT (repeatable)\n"
    "  --label KEY=VALUE          job label (repeatable)\n"
    "  --priority N               -100..100, higher runs first (default 0)\n"
    "  --idempotency-key KEY      a retried submit with the same key returns the same job\n"
    "\n"
    "Examples:\n"
    "  # phones / IoT boxes: INT4\n"
    "  JOB=$(quantctl submit model.onnx --preset mobile-int4 --label build=$BUILD_ID)\n"
    "  quantctl submit model.onnx --preset iot-int4\n"
    "  # AI PCs: INT8 or FP16, on a model uploaded before\n"
    "  quantctl submit sha256:4f0c... --preset aipc-int8 --priority 10\n"
    "  quantctl submit sha256:4f0c... --precision fp16\n"
    "  quantctl watch \"$JOB\" && quantctl download \"$JOB\" -o model-int4.onnx\n";

absl::Status SubmitCmd(CommandContext& ctx, const std::vector<std::string>& args) {
  core::Recipe recipe;
  JobFlags job_flags;
  FlagParser flags;
  job_flags.Register(&flags);
  QUANTD_ASSIGN_OR_RETURN(
      std::string model_id,
      ParseRecipeAndFlags(args, flags, &recipe, "need exactly one MODEL_ID or INPUT (see --help)"));
  if (!absl::StartsWith(model_id, "sha256:")) {
    AttachLocalImatrix(&recipe, &job_flags.data);
  } else if (LocalImatrix(recipe)) {
    // The model is already stored: the matrix goes up as its own blob.
    QUANTD_ASSIGN_OR_RETURN(UploadResult m, UploadModel(ctx, recipe.imatrix, {}, {}));
    recipe.imatrix = absl::StrCat("model:", m.model.model_id());
  }
  QUANTD_ASSIGN_OR_RETURN(v1::SubmitJobRequest req, job_flags.Request(recipe));
  if (!absl::StartsWith(model_id, "sha256:")) {
    QUANTD_ASSIGN_OR_RETURN(UploadResult uploaded, UploadModel(ctx, model_id, job_flags.data, {}));
    model_id = uploaded.model.model_id();
    NameCheckpointJob(uploaded, &req);
  }
  QUANTD_ASSIGN_OR_RETURN(Session * session, ctx.session());
  req.set_model_id(model_id);
  QUANTD_ASSIGN_OR_RETURN(v1::Job job, session->client().Submit(req));
  return PrintResult(ctx, MessageJson(job), job.job_id());
}

// ------------------------------------------------------------------ watch

constexpr char kWatchHelp[] =
    "usage: quantctl watch JOB\n"
    "\n"
    "Follows a job until it ends: live bars on a terminal, one line per phase\n"
    "otherwise. Exits 0 when it succeeded, 3 when it failed or was cancelled.\n"
    "Ctrl-C stops watching; the job keeps running.\n"
    "\n"
    "Examples:\n"
    "  quantctl watch job_0123456789abcdef0123\n"
    "  quantctl watch \"$JOB\" --json | jq -r .state\n";

absl::Status WatchCmd(CommandContext& ctx, const std::vector<std::string>& args) {
  QUANTD_ASSIGN_OR_RETURN(auto positional, ParseArgs(FlagParser(), args, 1, kNeedOneJob));
  QUANTD_ASSIGN_OR_RETURN(Session * session, ctx.session());
  QUANTD_ASSIGN_OR_RETURN(v1::Job job,
                          WatchJob(ctx, session, positional[0], /*cancel_on_interrupt=*/false));
  if (ctx.json()) {
    ctx.PrintJson(MessageJson(job));
  } else if (!ctx.quiet()) {
    double secs = job.end_time_ms() > job.start_time_ms() && job.start_time_ms() > 0
                      ? (job.end_time_ms() - job.start_time_ms()) / 1000.0
                      : 0;
    ctx.Print(
        absl::StrFormat("job %s %s after %.2f s", job.job_id(), StateName(job.state()), secs));
  }
  if (job.state() != v1::JOB_STATE_SUCCEEDED) return JobFailure(job);
  return absl::OkStatus();
}

// ------------------------------------------------------------------ status

constexpr char kStatusHelp[] =
    "usage: quantctl status JOB\n"
    "\n"
    "Prints a job's state, progress, recipe, timings and error. Exits 0 whatever the\n"
    "job's state (read it from the output); use `watch` to wait.\n"
    "\n"
    "Examples:\n"
    "  quantctl status \"$JOB\"\n"
    "  quantctl status \"$JOB\" --json | jq -r .state\n";

absl::Status StatusCmd(CommandContext& ctx, const std::vector<std::string>& args) {
  QUANTD_ASSIGN_OR_RETURN(auto positional, ParseArgs(FlagParser(), args, 1, kNeedOneJob));
  QUANTD_ASSIGN_OR_RETURN(Session * session, ctx.session());
  auto job = session->client().GetJob(positional[0]);
  if (!job.ok()) return job.status();
  if (ctx.json()) {
    ctx.PrintJson(MessageJson(*job));
    return absl::OkStatus();
  }
  const auto& p = job->progress();
  std::vector<std::string> lines = {
      absl::StrCat("job:       ", job->job_id()),
      absl::StrCat("state:     ", StateName(job->state())),
      absl::StrCat("model:     ", job->model_id()),
      absl::StrCat("recipe:    ", RecipeSummary(job->recipe())),
      absl::StrCat("labels:    ", LabelsText(job->labels())),
      absl::StrCat("priority:  ", job->priority()),
      absl::StrCat("created:   ", FormatTime(job->create_time_ms())),
      absl::StrCat("started:   ", FormatTime(job->start_time_ms())),
      absl::StrCat("ended:     ", FormatTime(job->end_time_ms())),
  };
  if (job->state() == v1::JOB_STATE_RUNNING) {
    lines.push_back(absl::StrCat("progress:  ", p.phase(), " ", p.tensors_done(), "/",
                                 p.tensors_total(), " tensors, ETA ",
                                 HumanSeconds(p.eta_seconds())));
  }
  if (!job->error().code().empty()) {
    lines.push_back(absl::StrCat("error:     ", job->error().code(), ": ", job->error().message()));
  }
  for (const auto& f : job->artifact().files()) {
    lines.push_back(absl::StrCat("artifact:  ", f.name(), " ", HumanBytes(f.size_bytes()),
                                 " sha256:", f.sha256()));
  }
  ctx.Print(absl::StrJoin(lines, "\n"));
  return absl::OkStatus();
}

// ------------------------------------------------------------------ list

constexpr char kListHelp[] =
    "usage: quantctl list [--state STATE]... [--label KEY=VALUE]... [--model ID] [--limit N]\n"
    "\n"
    "Lists jobs, newest first. --state takes queued, running, succeeded, failed or\n"
    "cancelled (repeatable or comma-separated); every --label must match.\n"
    "\n"
    "Flags:\n"
    "  --state STATE              only jobs in these states\n"
    "  --label KEY=VALUE          only jobs with this label (repeatable)\n"
    "  --model ID                 only jobs of this model\n"
    "  --limit N                  at most N jobs (default 100; 0: all pages)\n"
    "\n"
    "Examples:\n"
    "  quantctl list --state running,queued\n"
    "  quantctl list --label build=1234 --json | jq -r '.jobs[].job_id'\n";

absl::Status ListCmd(CommandContext& ctx, const std::vector<std::string>& args) {
  std::vector<std::string> states, label_flags;
  std::string model;
  int limit = 100;
  FlagParser flags;
  flags.Repeated({"--state"}, &states);
  flags.Repeated({"--label"}, &label_flags);
  flags.String({"--model"}, &model);
  flags.Int({"--limit"}, &limit);
  QUANTD_RETURN_IF_ERROR(
      ParseArgs(flags, args, 0, "list takes no arguments (see --help)").status());
  if (limit < 0) return Usage("--limit must be >= 0");
  QUANTD_ASSIGN_OR_RETURN(auto labels, ParseLabels(label_flags));
  v1::ListJobsRequest req;
  for (const auto& s : states) {
    for (absl::string_view one : absl::StrSplit(s, ',', absl::SkipWhitespace())) {
      QUANTD_ASSIGN_OR_RETURN(v1::JobState state, ParseState(absl::StripAsciiWhitespace(one)));
      req.add_states(state);
    }
  }
  for (const auto& [k, v] : labels) (*req.mutable_labels())[k] = v;
  req.set_model_id(model);
  QUANTD_ASSIGN_OR_RETURN(Session * session, ctx.session());
  v1::ListJobsResponse all;
  for (;;) {
    int want = limit == 0 ? 1000 : std::min(1000, limit - all.jobs_size());
    req.set_page_size(want);
    QUANTD_ASSIGN_OR_RETURN(v1::ListJobsResponse page, session->client().ListJobs(req));
    for (auto& j : *page.mutable_jobs()) *all.add_jobs() = std::move(j);
    all.set_next_page_token(page.next_page_token());
    if (page.next_page_token().empty() || (limit > 0 && all.jobs_size() >= limit)) break;
    req.set_page_token(page.next_page_token());
  }
  if (ctx.json()) {
    ctx.PrintJson(MessageJson(all));
    return absl::OkStatus();
  }
  std::string out = absl::StrFormat("%-26s %-10s %-16s %-22s %-21s %s", "JOB", "STATE", "PROGRESS",
                                    "RECIPE", "CREATED", "LABELS");
  for (const auto& j : all.jobs()) {
    absl::StrAppend(
        &out, "\n",
        absl::StrFormat("%-26s %-10s %-16s %-22s %-21s %s", j.job_id(), StateName(j.state()),
                        ProgressText(j), RecipeSummary(j.recipe()), FormatTime(j.create_time_ms()),
                        LabelsText(j.labels())));
  }
  ctx.Print(out);
  return absl::OkStatus();
}

// ------------------------------------------------------------------ cancel

constexpr char kCancelHelp[] =
    "usage: quantctl cancel JOB [--no-wait]\n"
    "\n"
    "Cancels a queued or running job and waits until the worker has stopped (a\n"
    "finished job is left as it is). Exits 0 when the job is now final.\n"
    "\n"
    "Flags:\n"
    "  --no-wait                  return at once, without waiting for the worker\n"
    "\n"
    "Examples:\n"
    "  quantctl cancel \"$JOB\"\n"
    "  quantctl list --state queued --json | jq -r '.jobs[].job_id' | xargs -n1 quantctl cancel\n";

absl::Status CancelCmd(CommandContext& ctx, const std::vector<std::string>& args) {
  bool no_wait = false;
  FlagParser flags;
  flags.Bool({"--no-wait"}, &no_wait);
  QUANTD_ASSIGN_OR_RETURN(auto positional, ParseArgs(flags, args, 1, kNeedOneJob));
  QUANTD_ASSIGN_OR_RETURN(Session * session, ctx.session());
  QUANTD_ASSIGN_OR_RETURN(v1::Job job, session->client().Cancel(positional[0]));
  if (!no_wait && !IsFinal(job.state())) {
    QUANTD_ASSIGN_OR_RETURN(job, session->Watch(positional[0], nullptr));
  }
  return PrintResult(ctx, MessageJson(job),
                     absl::StrCat("job ", job.job_id(), " ", StateName(job.state())));
}

// ------------------------------------------------------------------ delete

constexpr char kDeleteHelp[] =
    "usage: quantctl delete JOB\n"
    "\n"
    "Deletes a finished job and its artifact on the server (cancel it first if it\n"
    "is still queued or running).\n"
    "\n"
    "Example:\n"
    "  quantctl delete \"$JOB\"\n";

absl::Status DeleteCmd(CommandContext& ctx, const std::vector<std::string>& args) {
  QUANTD_ASSIGN_OR_RETURN(auto positional, ParseArgs(FlagParser(), args, 1, kNeedOneJob));
  QUANTD_ASSIGN_OR_RETURN(Session * session, ctx.session());
  QUANTD_RETURN_IF_ERROR(session->client().DeleteJob(positional[0]));
  return PrintResult(ctx, JsonObject().Str("job_id", positional[0]).Bool("deleted", true).Build(),
                     absl::StrCat("deleted job ", positional[0]));
}

// ------------------------------------------------------------------ download

constexpr char kDownloadHelp[] =
    "usage: quantctl download JOB -o PATH\n"
    "\n"
    "Downloads a succeeded job's model to PATH (ONNX external data to PATH.data,\n"
    "with the model rewritten to point at it). Every file is resumed from\n"
    "PATH.part when a download broke, verified against the server's sha256 and\n"
    "renamed into place atomically. A folder artifact (an MLX folder) goes into\n"
    "the new folder PATH as a whole, through PATH.download/.\n"
    "\n"
    "Flags:\n"
    "  -o, --output PATH          where to write the model (default: the artifact's\n"
    "                             own file name in the current directory; for a\n"
    "                             folder artifact, a folder named after the job)\n"
    "\n"
    "Examples:\n"
    "  quantctl download \"$JOB\" -o phone/model.onnx\n";

absl::Status DownloadCmd(CommandContext& ctx, const std::vector<std::string>& args) {
  std::string output;
  FlagParser flags;
  flags.String({"-o", "--output"}, &output);
  QUANTD_ASSIGN_OR_RETURN(auto positional, ParseArgs(flags, args, 1, kNeedOneJob));
  QUANTD_ASSIGN_OR_RETURN(Session * session, ctx.session());
  QUANTD_ASSIGN_OR_RETURN(
      v1::Job job,
      SucceededJob(session, positional[0],
                   absl::StrCat("wait for it with `quantctl watch ", positional[0], "`")));
  if (output.empty() && job.artifact().folder()) output = job.job_id();
  if (output.empty() && job.artifact().files_size() > 0) output = job.artifact().files(0).name();
  QUANTD_ASSIGN_OR_RETURN(std::vector<std::string> files, DownloadArtifact(ctx, job, output));
  return PrintResult(ctx,
                     JsonObject()
                         .Str("job_id", job.job_id())
                         .Raw("artifact", MessageJson(job.artifact()))
                         .Raw("output_files", JsonStringArray(files))
                         .Build(),
                     absl::StrCat("wrote ", absl::StrJoin(files, " + ")));
}

// ------------------------------------------------------------------ report

constexpr char kReportHelp[] =
    "usage: quantctl report JOB [--tensors N]\n"
    "\n"
    "Prints a succeeded job's quality report: totals, then one row per tensor\n"
    "(shape, types, bytes, SQNR, relative L2 error), worst SQNR first. --json\n"
    "prints the whole report.\n"
    "\n"
    "Flags:\n"
    "  --tensors N                rows to show (default 20; 0: all)\n"
    "\n"
    "Examples:\n"
    "  quantctl report \"$JOB\"\n"
    "  quantctl report \"$JOB\" --json | jq '.tensors | map(.sqnr_db) | min'\n";

absl::Status ReportCmd(CommandContext& ctx, const std::vector<std::string>& args) {
  int rows = 20;
  FlagParser flags;
  flags.Int({"--tensors"}, &rows);
  QUANTD_ASSIGN_OR_RETURN(auto positional, ParseArgs(flags, args, 1, kNeedOneJob));
  QUANTD_ASSIGN_OR_RETURN(Session * session, ctx.session());
  QUANTD_ASSIGN_OR_RETURN(
      v1::Job job, SucceededJob(session, positional[0], "the report exists once it succeeded"));
  const v1::Report& r = job.report();
  if (ctx.json()) {
    ctx.PrintJson(MessageJson(r));
    return absl::OkStatus();
  }
  std::vector<std::string> lines = {
      absl::StrCat("job:               ", job.job_id()),
      absl::StrCat("format/precision:  ", r.format(), " ", r.precision()),
      absl::StrCat("recipe:            ", r.recipe()),
      absl::StrFormat("tensors:           %d of %d converted", r.tensors_converted(),
                      r.tensors_total()),
      absl::StrFormat("weights:           %s -> %s (%.1f%%)", HumanBytes(r.bytes_before()),
                      HumanBytes(r.bytes_after()),
                      r.bytes_before() ? 100.0 * r.bytes_after() / r.bytes_before() : 0.0),
      absl::StrFormat("files:             %s -> %s", HumanBytes(r.input_file_bytes()),
                      HumanBytes(r.output_file_bytes())),
      absl::StrFormat("values clamped:    %d, flushed: %d", r.values_clamped(), r.values_flushed()),
      absl::StrFormat("time:              %.2f s", r.seconds()),
  };
  for (const auto& n : r.notes()) lines.push_back(absl::StrCat("note:              ", n));
  std::vector<const v1::TensorReport*> tensors;
  for (const auto& t : r.tensors()) tensors.push_back(&t);
  std::stable_sort(tensors.begin(), tensors.end(), [](const auto* a, const auto* b) {
    double sa = a->has_sqnr_db() ? a->sqnr_db() : 1e9;
    double sb = b->has_sqnr_db() ? b->sqnr_db() : 1e9;
    return sa < sb;
  });
  if (!tensors.empty()) {
    lines.push_back("");
    lines.push_back(absl::StrFormat("%-40s %-14s %-28s %10s %10s %9s %9s", "TENSOR", "SHAPE",
                                    "TYPE", "BEFORE", "AFTER", "SQNR dB", "REL L2"));
    size_t n = rows <= 0 ? tensors.size() : std::min<size_t>(rows, tensors.size());
    for (size_t i = 0; i < n; ++i) {
      const auto& t = *tensors[i];
      std::string name = t.name();
      if (name.size() > 40) name = "..." + name.substr(name.size() - 37);
      lines.push_back(absl::StrFormat(
          "%-40s %-14s %-28s %10s %10s %9s %9s", name, absl::StrJoin(t.shape(), "x"),
          absl::StrCat(t.dtype_before(), "->", t.dtype_after()), HumanBytes(t.bytes_before()),
          HumanBytes(t.bytes_after()), t.has_sqnr_db() ? absl::StrFormat("%.2f", t.sqnr_db()) : "-",
          t.has_rel_l2_error() ? absl::StrFormat("%.2e", t.rel_l2_error()) : "-"));
    }
    if (n < tensors.size()) {
      lines.push_back(absl::StrCat("... ", tensors.size() - n, " more (--tensors 0 shows all)"));
    }
  }
  ctx.Print(absl::StrJoin(lines, "\n"));
  return absl::OkStatus();
}

// ------------------------------------------------------------------ presets

constexpr char kPresetsHelp[] =
    "usage: quantctl presets\n"
    "\n"
    "Lists the named recipes for the deployment targets (use with --preset;\n"
    "explicit recipe flags override a preset's).\n"
    "\n"
    "Examples:\n"
    "  quantctl presets\n"
    "  quantctl presets --json | jq -r '.presets[].name'\n";

absl::Status PresetsCmd(CommandContext& ctx, const std::vector<std::string>& args) {
  QUANTD_RETURN_IF_ERROR(ParseArgs(FlagParser(), args, 0, "presets takes no arguments").status());
  if (ctx.json()) {
    std::string list = "[";
    for (const auto& p : core::Presets()) {
      if (list.size() > 1) list += ",";
      list += JsonObject()
                  .Str("name", p.name)
                  .Str("description", p.description)
                  .Raw("flags", JsonStringArray(core::PresetFlags(p)))
                  .Build();
    }
    list += "]";
    ctx.PrintJson(JsonObject().Raw("presets", list).Build());
    return absl::OkStatus();
  }
  std::string out;
  for (const auto& p : core::Presets()) {
    if (!out.empty()) out += "\n";
    absl::StrAppendFormat(&out, "%-12s %s\n             %s", p.name, p.description,
                          absl::StrJoin(core::PresetFlags(p), " "));
  }
  ctx.Print(out);
  return absl::OkStatus();
}

// ------------------------------------------------------------------ health

constexpr char kHealthHelp[] =
    "usage: quantctl health\n"
    "\n"
    "Asks the server's grpc.health.v1 service whether it serves. Exits 0 when it\n"
    "does, 4 when it is unreachable or not serving, 5 when the token is refused.\n"
    "\n"
    "Examples:\n"
    "  quantctl --server quantd.internal:7443 health\n"
    "  until quantctl health --quiet; do sleep 1; done\n";

absl::Status HealthCmd(CommandContext& ctx, const std::vector<std::string>& args) {
  QUANTD_RETURN_IF_ERROR(ParseArgs(FlagParser(), args, 0, "health takes no arguments").status());
  QUANTD_ASSIGN_OR_RETURN(Session * session, ctx.session());
  QUANTD_ASSIGN_OR_RETURN(std::string status, session->Health());
  if (ctx.json()) {
    ctx.PrintJson(
        JsonObject().Str("server", ctx.options().session.server).Str("status", status).Build());
  } else if (!ctx.quiet()) {
    ctx.Print(absl::StrCat(ctx.options().session.server, ": ", status));
  }
  if (status != "SERVING") {
    return absl::UnavailableError(absl::StrCat("the server is ", status));
  }
  return absl::OkStatus();
}

// ------------------------------------------------------------------ version

constexpr char kVersionHelp[] =
    "usage: quantctl version\n"
    "\n"
    "Prints quantctl's version and the API it speaks.\n"
    "\n"
    "Example:\n"
    "  quantctl version --json\n";

absl::Status VersionCmd(CommandContext& ctx, const std::vector<std::string>& args) {
  QUANTD_RETURN_IF_ERROR(ParseArgs(FlagParser(), args, 0, "version takes no arguments").status());
  return PrintResult(ctx,
                     JsonObject().Str("quantctl", QUANTD_VERSION).Str("api", "quantd.v1").Build(),
                     absl::StrCat("quantctl ", QUANTD_VERSION, " (API quantd.v1)"));
}

}  // namespace

const std::vector<Command>& Commands() {
  static const auto* const kCommands = new std::vector<Command>{
      {"quantize", "upload, convert, watch, download and verify in one step", kQuantizeHelp, true,
       QuantizeCmd},
      {"upload", "upload a model (with its external data); print its id", kUploadHelp, false,
       UploadCmd},
      {"submit", "submit a job for a model id or a local file; print the job id", kSubmitHelp, true,
       SubmitCmd},
      {"watch", "follow a job until it ends", kWatchHelp, false, WatchCmd},
      {"status", "show a job", kStatusHelp, false, StatusCmd},
      {"list", "list jobs (filter by state, label, model)", kListHelp, false, ListCmd},
      {"cancel", "cancel a queued or running job", kCancelHelp, false, CancelCmd},
      {"download", "download a succeeded job's model, verified", kDownloadHelp, false, DownloadCmd},
      {"report", "show a job's quality report (table or JSON)", kReportHelp, false, ReportCmd},
      {"delete", "delete a finished job and its artifact", kDeleteHelp, false, DeleteCmd},
      {"presets", "list the named recipes for deployment targets", kPresetsHelp, false, PresetsCmd},
      {"health", "check that the server serves", kHealthHelp, false, HealthCmd},
      {"version", "print the version", kVersionHelp, false, VersionCmd},
  };
  return *kCommands;
}

const Command* FindCommand(const std::string& name) {
  for (const Command& c : Commands()) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

}  // namespace quantd::quantctl
