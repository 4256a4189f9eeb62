// quantctl: the command line for a quantd server — what build farms script
// against and what people watch long conversions with.
//
// main() wires the parts: global flags and environment, the signal thread,
// the command table, and the one place a failure becomes an exit code.
#include <malloc.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "commands.h"
#include "context.h"
#include "exit_codes.h"
#include "flag_parser.h"
#include "interrupter.h"
#include "json_output.h"
#include "quantd/core/recipe_flags.h"

namespace quantd::quantctl {
namespace {

constexpr char kGlobalFlags[] =
    "Global flags (before or after the command):\n"
    "  --server HOST:PORT         the quantd server (env QUANTD_SERVER; default 127.0.0.1:7443)\n"
    "  --token TOKEN              bearer token (env QUANTD_TOKEN)\n"
    "  --tls                      use TLS with the system's root certificates\n"
    "  --tls-ca FILE              use TLS, trusting these PEM roots (env QUANTD_TLS_CA)\n"
    "  --tls-cert FILE            client certificate for mutual TLS (PEM)\n"
    "  --tls-key FILE             client private key for mutual TLS (PEM)\n"
    "  --tls-server-name NAME     name to check in the server's certificate\n"
    "  --timeout SECONDS          deadline of each non-streaming call (default 30)\n"
    "  --limit-rate BYTES         cap upload/download speed (suffixes K, M, G)\n"
    "  --hash-first               hash the files before uploading, so a model the server\n"
    "                             already has is not sent (an extra read; slow links)\n"
    "  --json                     print one JSON object on stdout (errors too)\n"
    "  -q, --quiet                no progress or summary lines (ids and --json still print)\n"
    "  -h, --help                 help (also `quantctl help COMMAND`)\n";

constexpr char kOutputNotes[] =
    "Output: results go to stdout; progress goes to stderr — live bars when stdout\n"
    "and stderr are terminals, otherwise one plain line per phase change with no\n"
    "control characters (QUANTCTL_PROGRESS=tty|plain|none overrides).\n";

std::string MainHelp() {
  std::string out =
      "usage: quantctl [global flags] COMMAND [args]\n"
      "\n"
      "Quantizes models on a quantd server: ONNX (INT4/INT8/FP16/FP32) and GGUF.\n"
      "\n"
      "Commands:\n";
  for (const Command& c : Commands())
    absl::StrAppendFormat(&out, "  %-10s %s\n", c.name, c.summary);
  absl::StrAppend(&out,
                  "\n"
                  "Examples:\n"
                  "  # phones / IoT: INT4\n"
                  "  quantctl quantize model.onnx -o phone/model.onnx --preset mobile-int4\n"
                  "  quantctl quantize model.onnx -o iot/model.onnx --preset iot-int4\n"
                  "  # AI PCs: INT8 or FP16\n"
                  "  quantctl quantize model.onnx -o aipc/model.onnx --preset aipc-int8\n"
                  "  quantctl quantize model.onnx -o aipc/model-fp16.onnx --precision fp16\n"
                  "  # scripted: submit, wait, fetch\n"
                  "  JOB=$(quantctl submit model.onnx --preset mobile-int4)\n"
                  "  quantctl watch \"$JOB\" && quantctl download \"$JOB\" -o model-int4.onnx\n"
                  "\n",
                  kGlobalFlags, "\n", kOutputNotes, "\n", ExitCodesHelp());
  return out;
}

absl::StatusOr<uint64_t> ParseRate(std::string v) {
  uint64_t mult = 1;
  if (!v.empty()) {
    char s = absl::ascii_toupper(v.back());
    if (s == 'K' || s == 'M' || s == 'G') {
      mult = s == 'K' ? 1024 : s == 'M' ? 1024 * 1024 : 1024ull * 1024 * 1024;
      v.pop_back();
    }
  }
  uint64_t n;
  if (!absl::SimpleAtoi(v, &n)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--limit-rate '", v, "': expected BYTES[K|M|G]"));
  }
  return n * mult;
}

// Takes the global flags out of `args` (wherever they are). Sets *help for
// -h/--help.
absl::Status ParseGlobal(std::vector<std::string>* args, GlobalOptions* g, bool* help) {
  if (const char* s = std::getenv("QUANTD_SERVER"); s && *s) g->session.server = s;
  if (const char* s = std::getenv("QUANTD_TOKEN"); s && *s) g->session.token = s;
  if (const char* s = std::getenv("QUANTD_TLS_CA"); s && *s) g->session.tls_ca = s;
  std::vector<std::string> rest;
  for (size_t i = 0; i < args->size(); ++i) {
    const std::string a = (*args)[i];
    if (a == "--") {  // everything after belongs to the command
      rest.insert(rest.end(), args->begin() + i, args->end());
      break;
    }
    FlagWord word(a);
    const std::string& name = word.name;
    const bool has_value = word.has_value;
    auto take = [&](std::string* into) -> absl::Status {
      absl::Status st = word.TakeValue(*args, &i);
      if (st.ok()) *into = word.value;
      return st;
    };
    absl::Status st;
    std::string tmp;
    if (name == "--server") {
      st = take(&g->session.server);
    } else if (name == "--token") {
      st = take(&g->session.token);
    } else if (name == "--tls" && !has_value) {
      g->session.tls = true;
    } else if (name == "--tls-ca") {
      st = take(&g->session.tls_ca);
    } else if (name == "--tls-cert") {
      st = take(&g->session.tls_cert);
    } else if (name == "--tls-key") {
      st = take(&g->session.tls_key);
    } else if (name == "--tls-server-name") {
      st = take(&g->session.tls_server_name);
    } else if (name == "--timeout") {
      st = take(&tmp);
      if (st.ok() && (!absl::SimpleAtod(tmp, &g->session.rpc_timeout_seconds) ||
                      g->session.rpc_timeout_seconds < 0)) {
        st = absl::InvalidArgumentError(absl::StrCat("--timeout '", tmp, "': expected seconds"));
      }
    } else if (name == "--limit-rate") {
      st = take(&tmp);
      if (st.ok()) {
        auto rate = ParseRate(tmp);
        if (rate.ok()) {
          g->session.limit_rate = *rate;
        } else {
          st = rate.status();
        }
      }
    } else if (name == "--hash-first" && !has_value) {
      g->session.hash_first = true;
    } else if (name == "--json" && !has_value) {
      g->json = true;
    } else if ((name == "--quiet" || name == "-q") && !has_value) {
      g->quiet = true;
    } else if ((name == "--help" || name == "-h") && !has_value) {
      *help = true;
    } else {
      rest.push_back(a);
    }
    if (!st.ok()) return st;
  }
  *args = std::move(rest);
  return absl::OkStatus();
}

// Reports a failure: a line on stderr always; with --json also a JSON error
// object on stdout unless the command already printed its result.
int Fail(CommandContext* ctx, bool json, const std::string& command, const absl::Status& st) {
  const int code = ExitCodeFor(st);
  if (ctx != nullptr) ctx->progress().Finish();
  std::string hint;
  switch (code) {
    case kExitUsage:
      if (st.code() == absl::StatusCode::kInvalidArgument) hint = " (see --help)";
      break;
    case kExitUnavailable:
      hint =
          " (is the server running and reachable, with matching TLS settings? check --server /"
          " QUANTD_SERVER and --tls*)";
      break;
    case kExitAuth:
      hint = " (check --token / QUANTD_TOKEN)";
      break;
    default:
      break;
  }
  // Core and server messages name recipe fields (`gguf_type`); the person at
  // the terminal gets the matching flags too. The JSON message stays as sent.
  std::fprintf(stderr, "quantctl%s%s: %s%s\n", command.empty() ? "" : " ", command.c_str(),
               core::WithFlagHint(st.message()).c_str(), hint.c_str());
  if (json && (ctx == nullptr || !ctx->printed_json())) {
    std::string err = JsonObject()
                          .Str("code", absl::StatusCodeToString(st.code()))
                          .Str("message", st.message())
                          .Int("exit_code", code)
                          .Build();
    std::fprintf(stdout, "%s\n", JsonObject().Raw("error", err).Build().c_str());
    std::fflush(stdout);
  }
  return code;
}

}  // namespace

std::string CommandHelp(const Command& command) {
  std::string out = command.help;
  if (command.recipe_flags) absl::StrAppend(&out, "\nRecipe flags:\n", core::RecipeFlagsHelp());
  absl::StrAppend(&out, "\n", kGlobalFlags, "\n", ExitCodesHelp());
  return out;
}

int Main(int argc, char** argv) {
  // A transfer's buffers (gRPC's receive slices, the read-ahead blocks) are
  // allocated and freed at a high rate. By default glibc gives freed large
  // blocks back to the kernel and takes fresh pages for the next ones: a
  // page fault (and a zeroed page) per 4 KiB received, about a tenth of a
  // download's CPU (docs/benchmarks.md). This short-lived process keeps
  // them instead.
  ::mallopt(M_MMAP_THRESHOLD, 32 << 20);
  ::mallopt(M_TRIM_THRESHOLD, 256 << 20);
  // gRPC's own log lines (e.g. TLS handshake details) would duplicate our
  // error message; GRPC_VERBOSITY set by the user wins.
  ::setenv("GRPC_VERBOSITY", "NONE", /*overwrite=*/0);
  Interrupter::Install();
  std::vector<std::string> args(argv + 1, argv + argc);
  GlobalOptions global;
  bool help = false;
  const bool json_requested = [&] {
    for (const auto& a : args) {
      if (a == "--json") return true;
    }
    return false;
  }();
  if (auto st = ParseGlobal(&args, &global, &help); !st.ok()) {
    return Fail(nullptr, json_requested, "", st);
  }
  if (args.empty()) {
    if (help) {
      std::fputs(MainHelp().c_str(), stdout);
      return kExitOk;
    }
    std::fputs(MainHelp().c_str(), stderr);
    return kExitUsage;
  }
  std::string name = args[0];
  args.erase(args.begin());
  if (name == "help") {
    if (args.empty()) {
      std::fputs(MainHelp().c_str(), stdout);
      return kExitOk;
    }
    name = args[0];
    help = true;
  }
  const Command* command = FindCommand(name);
  if (command == nullptr) {
    return Fail(nullptr, global.json, "",
                absl::InvalidArgumentError(absl::StrCat("unknown command '", name, "'")));
  }
  if (help) {
    std::fputs(CommandHelp(*command).c_str(), stdout);
    return kExitOk;
  }
  CommandContext ctx(global);
  absl::Status st = command->run(ctx, args);
  Interrupter::Quiesce();  // a Ctrl-C handler may still be using ctx
  ctx.progress().Finish();
  if (!st.ok()) return Fail(&ctx, global.json, name, st);
  return kExitOk;
}

}  // namespace quantd::quantctl

int main(int argc, char** argv) { return quantd::quantctl::Main(argc, argv); }
