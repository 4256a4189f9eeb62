#include "quantd/core/mlx/mlx_folder_writer.h"

#include "quantd/core/checkpoint/checkpoint.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "quantd/core/base/atomic_file.h"
#include "quantd/core/base/finite.h"
#include "quantd/core/base/half.h"
#include "quantd/core/base/status_macros.h"
#include "quantd/core/checkpoint/safetensors.h"
#include "quantd/core/checkpoint/safetensors_writer.h"
#include "quantd/core/quant/mlx_affine.h"
#include "quantd/core/quant/quality.h"

namespace quantd::core::mlx {
namespace {

namespace fs = std::filesystem;
using checkpoint::SafetensorsDtypeSize;
using checkpoint::SafetensorsTensorSpec;
using checkpoint::SafetensorsWriter;
using quant::MlxFloatType;

// Elements per block when a tensor is converted / quantized piecewise.
constexpr int64_t kBlockElements = int64_t{1} << 20;

bool IsFloatDtype(const std::string& d) { return checkpoint::ParseDtype(d).has_value(); }

MlxFloatType FloatTypeOf(const std::string& d) {
  if (d == "F16") return MlxFloatType::kF16;
  if (d == "BF16") return MlxFloatType::kBF16;
  return MlxFloatType::kF32;
}

int64_t Elements(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// float <- F32/F16/BF16 elements at any address. REQUIRES: IsFloatDtype(dtype).
void ToFloat(const std::string& dtype, const uint8_t* src, int64_t n, float* out) {
  checkpoint::DtypeToFloat(*checkpoint::ParseDtype(dtype), src, static_cast<size_t>(n), out);
}

// MLX's astype from float: F16 round to nearest even (overflow to inf), BF16
// round to nearest even with NaN as 0x7FC0 (its software bfloat16).
void FromFloat(const std::string& dtype, const float* in, int64_t n, uint8_t* dst) {
  if (dtype == "F32") {
    std::memcpy(dst, in, n * sizeof(float));
    return;
  }
  if (dtype == "F16") {
    for (int64_t i = 0; i < n; ++i) {
      const uint16_t v = FloatToHalf(in[i]);
      std::memcpy(dst + 2 * i, &v, 2);
    }
    return;
  }
  for (int64_t i = 0; i < n; ++i) {  // branch-free: the compiler vectorizes it
    const uint16_t v = std::isnan(in[i]) ? uint16_t{0x7FC0} : FloatToBfloat16(in[i]);
    std::memcpy(dst + 2 * i, &v, 2);
  }
}

// One output tensor of the folder.
struct OutputItem {
  size_t source;  // index into the kept sources
  int part;       // 0 = the tensor (or packed weight), 1 = scales, 2 = biases
  SafetensorsTensorSpec spec;
};

// A source tensor's output bytes, made once and written piece by piece.
struct Materialized {
  size_t source = static_cast<size_t>(-1);
  // Either views into the source (passthrough) or owned buffers.
  absl::Span<const uint8_t> parts[3];
  std::vector<uint8_t> owned[3];
};

std::string DtypeAfter(const MlxTensorDecision& d) {
  return absl::StrCat("MLX_AFFINE_", d.bits, "BIT_G", d.group_size);
}

absl::Status WriteText(const std::string& path, const std::string& text, OutputDigests* digests) {
  return WriteFileAtomically(
      path, absl::Span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()),
      digests);
}

// Python's json.dump(obj, f, indent=4) for the JSON mlx-lm writes.
std::string PythonJsonDump(const nlohmann::ordered_json& j) {
  return j.dump(4, ' ', /*ensure_ascii=*/true);
}

class FolderWriter {
 public:
  FolderWriter(const std::vector<MlxSourceTensor>& sources, const MlxFolderOptions& options,
               const RunContext& ctx)
      : all_sources_(sources), options_(options), ctx_(ctx) {}

  absl::StatusOr<MlxFolderResult> Run(const std::string& config_json,
                                      const std::string& generation_config_json,
                                      const std::vector<std::string>& side_files,
                                      const std::string& out_dir);

 private:
  absl::Status Materialize(size_t k);
  // Drops the current source's outputs and lets the source release its data.
  void ReleaseCurrent();
  absl::Status QuantizeSource(size_t k, absl::Span<const uint8_t> src);

  const std::vector<MlxSourceTensor>& all_sources_;
  const MlxFolderOptions& options_;
  const RunContext& ctx_;

  std::vector<const MlxSourceTensor*> sources_;  // kept, in input order
  MlxQuantPlan plan_;
  std::string cast_dtype_;
  std::vector<std::string> out_dtype_;  // per kept source: dtype written
  Materialized current_;
  std::vector<TensorReport> reports_;
};

absl::Status FolderWriter::QuantizeSource(size_t k, absl::Span<const uint8_t> src) {
  const MlxSourceTensor& s = *sources_[k];
  const MlxTensorDecision& d = plan_.tensors[k];
  const std::string& t_name = out_dtype_[k];
  const MlxFloatType t = FloatTypeOf(t_name);
  const int es = quant::MlxFloatTypeSize(t);
  const int src_es = SafetensorsDtypeSize(s.dtype);
  const int64_t rows = s.shape[0], cols = s.shape[1];
  const int64_t groups = cols / d.group_size;
  const int64_t row_bytes = quant::MlxAffinePackedBytesPerRow(cols, d.bits);
  std::vector<uint8_t>& packed = current_.owned[0];
  std::vector<uint8_t>& scales = current_.owned[1];
  std::vector<uint8_t>& biases = current_.owned[2];
  packed.assign(rows * row_bytes, 0);
  scales.assign(rows * groups * es, 0);
  biases.assign(rows * groups * es, 0);

  // Tasks of block_rows rows write fixed row ranges, and their quality
  // accumulators merge in task order: bytes and report do not depend on the
  // number of threads.
  const int64_t block_rows = std::max<int64_t>(1, kBlockElements / std::max<int64_t>(cols, 1));
  const int64_t tasks = (rows + block_rows - 1) / block_rows;
  // Another float type is computed through float32; the same type at an
  // address the quantizer cannot read it from (a safetensors header whose
  // length is not a multiple of 8) is only copied.
  const bool need_cast = t_name != s.dtype;
  const bool need_copy = !need_cast && reinterpret_cast<uintptr_t>(src.data()) % src_es != 0;
  const bool want_quality = options_.compute_quality;
  // Rows of [rows, cols] are the columns of the [cols, rows] matrix X W
  // multiplies (reduction over the input size): the output error is sampled
  // by 64-row groups, and every task's accumulator shares the one probe of its size.
  const uint64_t threshold = quant::ProbeSampleThreshold(rows, options_.quality_level);
  std::optional<quant::QualityAccumulator> probe_owner;
  if (want_quality) probe_owner.emplace(cols);
  struct Scratch {
    std::vector<float> src_f, deq_f;
    std::vector<uint8_t> cast;
  };
  std::vector<Scratch> scratch(ctx_.Parallelism());
  std::vector<std::optional<quant::QualityAccumulator>> quality(want_quality ? tasks : 0);
  ctx_.ParallelFor(tasks, [&](int64_t task, int slot) {
    Scratch& sc = scratch[slot];
    const int64_t r0 = task * block_rows;
    const int64_t nr = std::min(block_rows, rows - r0);
    const uint8_t* block = src.data() + r0 * cols * src_es;
    const void* w = block;
    if (need_cast || want_quality) {
      sc.src_f.resize(nr * cols);
      ToFloat(s.dtype, block, nr * cols, sc.src_f.data());
    }
    if (need_cast) {
      sc.cast.resize(nr * cols * es);
      FromFloat(t_name, sc.src_f.data(), nr * cols, sc.cast.data());
      w = sc.cast.data();
    } else if (need_copy) {
      sc.cast.resize(nr * cols * es);
      std::memcpy(sc.cast.data(), block, nr * cols * es);
      w = sc.cast.data();
    }
    quant::QuantizeMlxAffine(t, d.bits, d.group_size, w, nr, cols, cols,
                             packed.data() + r0 * row_bytes, scales.data() + r0 * groups * es,
                             biases.data() + r0 * groups * es);
    if (want_quality) {
      sc.deq_f.resize(nr * cols);
      quant::DequantizeMlxAffine(t, d.bits, d.group_size, packed.data() + r0 * row_bytes,
                                 scales.data() + r0 * groups * es, biases.data() + r0 * groups * es,
                                 nr, cols, sc.deq_f.data());
      quality[task].emplace(*probe_owner);
      for (int64_t a = r0; a < r0 + nr;) {  // one sampling group at a time
        const int64_t group = a / quant::QualityAccumulator::kProbeGroup;
        const int64_t b = std::min(r0 + nr, (group + 1) * quant::QualityAccumulator::kProbeGroup);
        quality[task]->AddColumns(sc.src_f.data() + (a - r0) * cols,
                                  sc.deq_f.data() + (a - r0) * cols, b - a,
                                  quant::ProbeGroupSampled(group, threshold));
        a = b;
      }
    }
  });
  for (int64_t task = 1; task < static_cast<int64_t>(quality.size()); ++task) {
    quality[0]->Merge(*quality[task]);
  }
  for (int p = 0; p < 3; ++p) current_.parts[p] = current_.owned[p];
  TensorReport& rep = reports_[k];
  rep.dtype_after = DtypeAfter(d);
  rep.bytes_after = packed.size() + scales.size() + biases.size();
  if (!quality.empty()) quality[0]->Fill(&rep);
  return absl::OkStatus();
}

void FolderWriter::ReleaseCurrent() {
  const size_t k = current_.source;
  current_ = Materialized();
  if (k < sources_.size() && sources_[k]->release) sources_[k]->release();
}

absl::Status FolderWriter::Materialize(size_t k) {
  if (current_.source == k) return absl::OkStatus();
  ReleaseCurrent();
  QUANTD_RETURN_IF_ERROR(ctx_.CheckCancelled());
  current_.source = k;
  const MlxSourceTensor& s = *sources_[k];
  if (!s.data) {
    return absl::InvalidArgumentError(absl::StrCat("tensor ", s.name, " has no data"));
  }
  QUANTD_ASSIGN_OR_RETURN(absl::Span<const uint8_t> src, s.data());
  const uint64_t want = static_cast<uint64_t>(Elements(s.shape)) * SafetensorsDtypeSize(s.dtype);
  if (src.size() != want) {
    return absl::InvalidArgumentError(absl::StrCat("tensor ", s.name, " holds ", src.size(),
                                                   " bytes; its shape and dtype need ", want));
  }
  TensorReport& rep = reports_[k];
  rep.name = s.name;
  rep.shape = s.shape;
  rep.dtype_before = s.dtype;
  rep.bytes_before = src.size();
  if (plan_.tensors[k].quantize) {
    // NaN/Inf would give infinite scales: refuse the tensor before any of it
    // is quantized (float tensors are copied or cast as they are).
    const int64_t n = Elements(s.shape);
    const int64_t bad = s.dtype == "F32"   ? FirstNonFiniteF32(src.data(), n)
                        : s.dtype == "F16" ? FirstNonFiniteF16(src.data(), n)
                                           : FirstNonFiniteBF16(src.data(), n);
    if (bad >= 0) {
      float v;
      ToFloat(s.dtype, src.data() + bad * SafetensorsDtypeSize(s.dtype), 1, &v);
      return NonFiniteWeightError(s.name, bad, v);
    }
    return QuantizeSource(k, src);
  }

  rep.dtype_after = out_dtype_[k];
  if (out_dtype_[k] == s.dtype) {
    current_.parts[0] = src;
  } else {
    const int64_t n = Elements(s.shape);
    std::vector<uint8_t>& out = current_.owned[0];
    out.resize(n * SafetensorsDtypeSize(out_dtype_[k]));
    std::vector<float> f;
    const int out_es = SafetensorsDtypeSize(out_dtype_[k]);
    const int src_es = SafetensorsDtypeSize(s.dtype);
    for (int64_t i0 = 0; i0 < n; i0 += kBlockElements) {
      const int64_t m = std::min(kBlockElements, n - i0);
      f.resize(m);
      ToFloat(s.dtype, src.data() + i0 * src_es, m, f.data());
      FromFloat(out_dtype_[k], f.data(), m, out.data() + i0 * out_es);
    }
    current_.parts[0] = out;
  }
  rep.bytes_after = current_.parts[0].size();
  return absl::OkStatus();
}

absl::StatusOr<MlxFolderResult> FolderWriter::Run(const std::string& config_json,
                                                  const std::string& generation_config_json,
                                                  const std::vector<std::string>& side_files,
                                                  const std::string& out_dir) {
  // --- config.json, as mlx-lm's load_config / quantize_model / save_config.
  nlohmann::ordered_json config =
      nlohmann::ordered_json::parse(config_json, nullptr, /*allow_exceptions=*/false);
  if (!config.is_object()) {
    return absl::InvalidArgumentError("config.json is not a JSON object");
  }
  if (!generation_config_json.empty()) {
    nlohmann::ordered_json gen =
        nlohmann::ordered_json::parse(generation_config_json, nullptr, false);
    if (gen.is_object() && gen.contains("eos_token_id")) {
      const auto& eos = gen["eos_token_id"];
      const bool truthy = !(eos.is_null() || (eos.is_number() && eos == 0) ||
                            (eos.is_array() && eos.empty()) || (eos.is_boolean() && !eos));
      if (truthy) config["eos_token_id"] = eos;
    }
  }
  cast_dtype_ = MlxCastDtype(config);
  const bool tied = config.contains("tie_word_embeddings") &&
                    config["tie_word_embeddings"].is_boolean() &&
                    config["tie_word_embeddings"].get<bool>();
  int64_t num_layers = 0;
  if (config.contains("num_hidden_layers") && config["num_hidden_layers"].is_number_integer()) {
    num_layers = config["num_hidden_layers"].get<int64_t>();
  }

  // --- Which tensors, and how.
  std::vector<MlxTensorInfo> infos;
  for (const MlxSourceTensor& s : all_sources_) {
    if (absl::EndsWith(s.name, ".rotary_emb.inv_freq")) continue;
    if (tied && s.name == "lm_head.weight") continue;
    if (SafetensorsDtypeSize(s.dtype) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor ", s.name, " has unsupported dtype ", s.dtype));
    }
    sources_.push_back(&s);
    infos.push_back({s.name, s.dtype, s.shape});
  }
  QUANTD_ASSIGN_OR_RETURN(plan_, PlanMlxQuantization(infos, num_layers, options_.quant));
  config.erase("_name_or_path");
  config.erase("vision_config");
  config["quantization"] = plan_.quantization;
  config["quantization_config"] = plan_.quantization;
  {
    nlohmann::ordered_json sorted = nlohmann::ordered_json::object();
    std::vector<std::string> keys;
    for (auto it = config.begin(); it != config.end(); ++it) keys.push_back(it.key());
    std::sort(keys.begin(), keys.end());
    for (const std::string& key : keys) sorted[key] = config[key];
    config = std::move(sorted);
  }

  // --- Output tensors and shards.
  std::vector<OutputItem> items;
  std::map<std::string, size_t> seen;
  uint64_t total_parameters = 0;
  out_dtype_.resize(sources_.size());
  for (size_t k = 0; k < sources_.size(); ++k) {
    const MlxSourceTensor& s = *sources_[k];
    const MlxTensorDecision& d = plan_.tensors[k];
    total_parameters += static_cast<uint64_t>(Elements(s.shape));
    out_dtype_[k] = (IsFloatDtype(s.dtype) && !cast_dtype_.empty()) ? cast_dtype_ : s.dtype;
    if (d.quantize) {
      const int64_t rows = s.shape[0], cols = s.shape[1];
      const std::vector<int64_t> gshape = {rows, cols / d.group_size};
      items.push_back(
          {k, 0, {s.name, "U32", {rows, quant::MlxAffinePackedWordsPerRow(cols, d.bits)}}});
      items.push_back({k, 1, {d.module + ".scales", out_dtype_[k], gshape}});
      items.push_back({k, 2, {d.module + ".biases", out_dtype_[k], gshape}});
    } else {
      items.push_back({k, 0, {s.name, out_dtype_[k], s.shape}});
    }
  }
  for (const OutputItem& it : items) {
    if (!seen.emplace(it.spec.name, it.source).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("output tensor ", it.spec.name,
                       " would be written twice (the checkpoint already has a "
                       "tensor of that name)"));
    }
  }
  std::vector<std::vector<size_t>> shards(1);
  uint64_t shard_size = 0, total_size = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    const uint64_t n = items[i].spec.nbytes();
    if (shard_size + n > options_.max_shard_bytes && !shards.back().empty()) {
      shards.emplace_back();
      shard_size = 0;
    }
    shards.back().push_back(i);
    shard_size += n;
    total_size += n;
  }

  // --- The folder.
  std::error_code ec;
  if (fs::exists(out_dir, ec) && !fs::is_empty(out_dir, ec)) {
    return absl::FailedPreconditionError(
        absl::StrCat(out_dir, ": output folder exists and is not empty"));
  }
  fs::create_directories(out_dir, ec);
  if (ec) {
    return absl::PermissionDeniedError(absl::StrCat(out_dir, ": cannot create: ", ec.message()));
  }

  MlxFolderResult result;
  reports_.assign(sources_.size(), TensorReport());
  nlohmann::ordered_json weight_map = nlohmann::ordered_json::object();
  std::map<std::string, std::string> map_sorted;
  Progress prog;
  prog.phase = "quantize";
  prog.tensors_total = sources_.size();
  prog.bytes_total = total_size;
  for (size_t sh = 0; sh < shards.size(); ++sh) {
    const std::string file = shards.size() == 1 ? std::string("model.safetensors")
                                                : absl::StrFormat("model-%05d-of-%05d.safetensors",
                                                                  sh + 1, shards.size());
    std::vector<SafetensorsTensorSpec> specs;
    for (size_t i : shards[sh]) specs.push_back(items[i].spec);
    checkpoint::SafetensorsWriterOptions wopt;
    wopt.metadata["format"] = "mlx";
    wopt.digests = ctx_.output_digests;
    QUANTD_ASSIGN_OR_RETURN(
        std::unique_ptr<SafetensorsWriter> writer,
        SafetensorsWriter::Create((fs::path(out_dir) / file).string(), std::move(specs), wopt));
    for (size_t i : shards[sh]) {
      const OutputItem& it = items[i];
      const bool first_of_source = current_.source != it.source;
      QUANTD_RETURN_IF_ERROR(Materialize(it.source));
      if (first_of_source) {
        prog.tensors_done = it.source;
        ctx_.Report(prog);
      }
      QUANTD_RETURN_IF_ERROR(writer->Write(current_.parts[it.part]));
      prog.bytes_done += current_.parts[it.part].size();
      map_sorted[it.spec.name] = file;
    }
    QUANTD_RETURN_IF_ERROR(writer->Commit());
    result.files.push_back(file);
  }
  ReleaseCurrent();
  prog.tensors_done = sources_.size();
  ctx_.Report(prog);

  for (const auto& [name, file] : map_sorted) weight_map[name] = file;
  nlohmann::ordered_json index = nlohmann::ordered_json::object();
  index["metadata"] = {{"total_size", total_size}, {"total_parameters", total_parameters}};
  index["weight_map"] = std::move(weight_map);
  QUANTD_RETURN_IF_ERROR(WriteText((fs::path(out_dir) / "model.safetensors.index.json").string(),
                                   PythonJsonDump(index), ctx_.output_digests));
  result.files.push_back("model.safetensors.index.json");
  QUANTD_RETURN_IF_ERROR(WriteText((fs::path(out_dir) / "config.json").string(),
                                   PythonJsonDump(config), ctx_.output_digests));
  result.files.push_back("config.json");
  for (const std::string& f : side_files) {
    const std::string base = fs::path(f).filename().string();
    if (base == "config.json" || absl::EndsWith(base, ".safetensors") ||
        base == "model.safetensors.index.json") {
      continue;
    }
    QUANTD_RETURN_IF_ERROR(
        CopyFileAtomically(f, (fs::path(out_dir) / base).string(), ctx_.output_digests));
    result.files.push_back(base);
  }

  result.total_size = total_size;
  result.total_parameters = total_parameters;
  for (size_t k = 0; k < sources_.size(); ++k) {
    result.tensors_quantized += plan_.tensors[k].quantize ? 1 : 0;
  }
  result.tensors = std::move(reports_);
  result.config = std::move(config);
  return result;
}

}  // namespace

absl::StatusOr<MlxFolderResult> WriteMlxFolder(
    const std::vector<MlxSourceTensor>& tensors, const std::string& config_json,
    const std::string& generation_config_json, const std::vector<std::string>& side_files,
    const std::string& out_dir, const MlxFolderOptions& options, const RunContext& ctx) {
  FolderWriter writer(tensors, options, ctx);
  return writer.Run(config_json, generation_config_json, side_files, out_dir);
}

std::vector<std::string> ListMlxSideFiles(const std::string& checkpoint_dir) {
  std::vector<std::string> out = checkpoint::ListTokenizerFiles(checkpoint_dir);
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(checkpoint_dir, ec)) {
    if (!entry.is_regular_file(ec)) continue;
    const std::string base = entry.path().filename().string();
    if (absl::EndsWith(base, ".py") || base == "generation_config.json") {
      out.push_back(entry.path().string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string MlxCastDtype(const nlohmann::ordered_json& config) {
  std::string dtype;
  if (config.contains("torch_dtype") && config["torch_dtype"].is_string()) {
    dtype = config["torch_dtype"].get<std::string>();
  } else if (config.contains("text_config") && config["text_config"].is_object() &&
             config["text_config"].contains("dtype") &&
             config["text_config"]["dtype"].is_string()) {
    dtype = config["text_config"]["dtype"].get<std::string>();
  }
  if (dtype == "float16") return "F16";
  if (dtype == "bfloat16") return "BF16";
  if (dtype == "float32") return "F32";
  return "";
}

}  // namespace quantd::core::mlx
