// `quantd quantize`: the offline one-shot conversion, the same core::Run the
// service's workers call. It owns the run's ThreadPool: recipe.threads
// threads compute (this thread and threads - 1 pool threads); without
// --threads, the machine's hardware threads.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "quantd/core/base/atomic_file.h"
#include "quantd/core/base/json_writer.h"
#include "quantd/core/base/thread_pool.h"
#include "quantd/core/onnx/float_pass.h"
#include "quantd/core/recipe_flags.h"
#include "quantd/core/run.h"
#include "quantd/server/commands.h"

namespace quantd::server {
namespace {

constexpr char kUsage[] =
    "usage: quantd quantize INPUT -o OUTPUT [recipe flags] [--report REPORT.json] [--json] "
    "[--quiet]\n"
    "\n"
    "Converts an ONNX model (with its external data beside it), a GGUF file, or a\n"
    "Hugging Face checkpoint folder (config.json + safetensors; to GGUF F32/F16/BF16/Q8_0,\n"
    "or with --format mlx to an Apple MLX folder OUTPUT, as mlx_lm.convert -q writes it).\n"
    "Output is written atomically (an MLX folder as a whole); ONNX weights go to\n"
    "OUTPUT.data when external.\n"
    "\n"
    "Examples:\n"
    "  quantd quantize model.onnx -o model-fp16.onnx --precision fp16\n"
    "  quantd quantize model.onnx -o model-int4.onnx --preset mobile-int4\n"
    "  quantd quantize model-f32.gguf -o model-q4km.gguf --gguf-type Q4_K_M\n"
    "  quantd quantize ./Phi-3.5-mini-instruct -o phi35-f16.gguf --gguf-type F16\n"
    "  quantd quantize ./Phi-3.5-mini-instruct -o phi35-mlx-4bit/ --format mlx\n"
    "  quantd quantize ./Phi-3.5-mini-instruct -o phi35-mlx-mixed/ --format mlx --mlx-recipe "
    "mixed_3_6\n"
    "\n"
    "Options:\n"
    "  -o, --output PATH                    output file, or folder for --format mlx (required)\n"
    "  --report PATH                        write the JSON quality report there\n"
    "  --json                               print the report JSON on stdout\n"
    "  --quiet                              no progress on stderr\n"
    "\n"
    "Recipe flags:\n";

}  // namespace

int QuantizeCommand(const std::vector<std::string>& args) {
  core::Recipe recipe;
  std::vector<std::string> rest;
  if (auto st = core::ParseRecipeFlags(args, &recipe, &rest); !st.ok()) {
    std::cerr << "quantd quantize: " << st.message() << "\n";
    return 2;
  }
  std::string input, output, report_path;
  bool json = false, quiet = false;
  for (size_t i = 0; i < rest.size(); ++i) {
    const std::string& a = rest[i];
    auto value = [&](std::string* into) {
      if (i + 1 >= rest.size()) return false;
      *into = rest[++i];
      return true;
    };
    if (a == "-h" || a == "--help") {
      std::cout << kUsage << core::RecipeFlagsHelp();
      return 0;
    } else if (a == "-o" || a == "--output") {
      if (!value(&output)) {
        std::cerr << "quantd quantize: " << a << " needs a path\n";
        return 2;
      }
    } else if (a.rfind("--output=", 0) == 0) {
      output = a.substr(9);
    } else if (a == "--report") {
      if (!value(&report_path)) {
        std::cerr << "quantd quantize: --report needs a path\n";
        return 2;
      }
    } else if (a.rfind("--report=", 0) == 0) {
      report_path = a.substr(9);
    } else if (a == "--json") {
      json = true;
    } else if (a == "--quiet" || a == "-q") {
      quiet = true;
    } else if (!a.empty() && a[0] == '-') {
      std::cerr << "quantd quantize: unknown flag " << a << " (see --help)\n";
      return 2;
    } else if (input.empty()) {
      input = a;
    } else {
      std::cerr << "quantd quantize: unexpected argument " << a << "\n";
      return 2;
    }
  }
  if (input.empty() || output.empty()) {
    std::cerr << "quantd quantize: need INPUT and -o OUTPUT (see --help)\n";
    return 2;
  }
  const bool threads_given = std::any_of(args.begin(), args.end(), [](const std::string& a) {
    return a == "--threads" || a.rfind("--threads=", 0) == 0;
  });
  if (!threads_given) {
    recipe.threads = std::clamp(static_cast<int>(std::thread::hardware_concurrency()), 1, 256);
  }
  if (auto st = core::ValidateRecipe(recipe); !st.ok()) {
    std::cerr << "quantd quantize: " << core::WithFlagHint(st.message()) << "\n";
    return 2;
  }
  const bool tty = ::isatty(STDERR_FILENO);
  std::string last_phase;
  core::ThreadPool pool(recipe.threads - 1);
  core::RunContext ctx;
  ctx.pool = &pool;
  ctx.parallelism = recipe.threads;
  ctx.progress = [&](const core::Progress& p) {
    if (quiet) return;
    if (tty) {
      std::fprintf(stderr, "\r%-8s %llu/%llu tensors  %.1f MiB", p.phase.c_str(),
                   static_cast<unsigned long long>(p.tensors_done),
                   static_cast<unsigned long long>(p.tensors_total),
                   static_cast<double>(p.bytes_done) / (1 << 20));
    } else if (p.phase != last_phase) {
      std::fprintf(stderr, "%s\n", p.phase.c_str());
    }
    last_phase = p.phase;
  };
  auto report = core::Run(recipe, input, output, ctx);
  if (tty && !quiet) std::fprintf(stderr, "\n");
  if (!report.ok()) {
    std::cerr << "quantd quantize: " << core::WithFlagHint(report.status().message()) << "\n";
    return 1;
  }
  std::string report_json = report->ToJson();
  if (!report_path.empty()) {
    auto st = core::WriteFileAtomically(
        report_path, {reinterpret_cast<const uint8_t*>(report_json.data()), report_json.size()});
    if (!st.ok()) {
      std::cerr << "quantd quantize: writing the report: " << st.message() << "\n";
      return 1;
    }
  }
  if (json) {
    std::cout << report_json;
  } else if (report->dry_run) {
    std::fputs(core::FormatPlan(report->plan).c_str(), stdout);
    std::printf("dry run: %s would be %llu bytes (%.2f MiB); nothing written\n", output.c_str(),
                static_cast<unsigned long long>(report->output_file_bytes),
                static_cast<double>(report->output_file_bytes) / (1 << 20));
  } else if (!quiet) {
    std::fprintf(stderr, "wrote %s: %llu tensors converted, %.2f MiB -> %.2f MiB in %.3f s\n",
                 output.c_str(), static_cast<unsigned long long>(report->tensors_converted),
                 static_cast<double>(report->bytes_before) / (1 << 20),
                 static_cast<double>(report->bytes_after) / (1 << 20), report->seconds);
  }
  return 0;
}

int PresetsCommand(const std::vector<std::string>& args) {
  if (!args.empty() && args[0] == "--json") {
    core::JsonWriter w(true);
    w.BeginObject();
    w.Key("presets");
    w.BeginArray();
    for (const auto& p : core::Presets()) {
      w.BeginObject();
      w.Field("name", p.name);
      w.Field("description", p.description);
      w.Key("flags");
      w.BeginArray();
      for (const auto& f : core::PresetFlags(p)) w.String(f);
      w.EndArray();
      w.EndObject();
    }
    w.EndArray();
    w.Key("fp16_op_block_list");
    w.BeginArray();
    for (const auto& op : core::DefaultFp16OpBlockList()) w.String(op);
    w.EndArray();
    w.EndObject();
    std::cout << w.str() << "\n";
    return 0;
  }
  for (const auto& p : core::Presets()) {
    std::string flags;
    for (const auto& f : core::PresetFlags(p)) absl::StrAppend(&flags, flags.empty() ? "" : " ", f);
    std::printf("%-12s %s\n             %s\n", p.name.c_str(), p.description.c_str(),
                flags.c_str());
  }
  std::string ops;
  for (const auto& op : core::DefaultFp16OpBlockList())
    absl::StrAppend(&ops, ops.empty() ? "" : ",", op);
  std::printf("\ndefault --op-block-list for fp16: %s\n", ops.c_str());
  return 0;
}

}  // namespace quantd::server
