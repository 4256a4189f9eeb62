#include "quantd/core/genai/rope_caches.h"

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "quantd/core/base/status_macros.h"

namespace quantd::core::genai {

using nlohmann::json;

namespace {

absl::StatusOr<std::vector<float>> FactorList(const json& scaling, const char* key, int64_t want) {
  auto it = scaling.find(key);
  if (it == scaling.end() || !it->is_array()) {
    return absl::InvalidArgumentError(
        absl::StrCat("config.json: rope_scaling.", key, " is missing or not a list"));
  }
  if (static_cast<int64_t>(it->size()) != want) {
    return absl::InvalidArgumentError(absl::StrCat("config.json: rope_scaling.", key, " has ",
                                                   it->size(), " values; rotary_dim / 2 is ",
                                                   want));
  }
  std::vector<float> out;
  for (const json& v : *it) {
    if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() <= 0) {
      return absl::InvalidArgumentError(absl::StrCat("config.json: rope_scaling.", key,
                                                     " holds a value that is not a positive "
                                                     "number"));
    }
    out.push_back(static_cast<float>(v.get<double>()));
  }
  return out;
}

}  // namespace

absl::StatusOr<RopeSpec> ReadRopeSpec(const json& config, const checkpoint::Hparams& h) {
  RopeSpec spec;
  QUANTD_ASSIGN_OR_RETURN(std::optional<double> prf,
                          checkpoint::ConfigNumber(config, "partial_rotary_factor"));
  const double factor = prf.value_or(1.0);
  if (!(factor > 0 && factor <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("config.json: partial_rotary_factor ", factor, " is not in (0, 1]"));
  }
  spec.rotary_dim = static_cast<int64_t>(static_cast<double>(h.head_dim) * factor);
  if (spec.rotary_dim < 2 || spec.rotary_dim % 2 != 0) {
    return absl::InvalidArgumentError(absl::StrCat("rotary dimension ", spec.rotary_dim,
                                                   " (head_dim x partial_rotary_factor) is not a "
                                                   "positive even number"));
  }
  QUANTD_ASSIGN_OR_RETURN(std::optional<double> theta,
                          checkpoint::ConfigNumber(config, "rope_theta"));
  spec.theta = theta.value_or(10000.0);
  if (!(spec.theta > 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("config.json: rope_theta ", spec.theta, " is not > 1"));
  }
  QUANTD_ASSIGN_OR_RETURN(std::optional<int64_t> max_pos,
                          checkpoint::ConfigInt(config, "max_position_embeddings"));
  if (!max_pos || *max_pos <= 0 || *max_pos > (int64_t{1} << 24)) {
    return absl::InvalidArgumentError(
        "config.json: max_position_embeddings is missing or not in 1 .. 16777216");
  }
  spec.max_positions = *max_pos;
  spec.original_positions = *max_pos;

  auto it = config.find("rope_scaling");
  if (it == config.end() || it->is_null()) return spec;
  if (!it->is_object())
    return absl::InvalidArgumentError("config.json: rope_scaling is not an object");
  const json& s = *it;
  std::string type;
  for (const char* key : {"rope_type", "type"}) {
    auto t = s.find(key);
    if (t != s.end() && t->is_string()) {
      type = t->get<std::string>();
      break;
    }
  }
  if (type.empty() || type == "default") return spec;
  if (type == "linear") {
    auto f = s.find("factor");
    if (f == s.end() || !f->is_number() || !(f->get<double>() >= 1)) {
      return absl::InvalidArgumentError("config.json: rope_scaling.factor (linear) is not >= 1");
    }
    spec.linear_factor = f->get<double>();
    return spec;
  }
  if (type == "longrope" || type == "su") {
    spec.longrope = true;
    const int64_t half = spec.rotary_dim / 2;
    QUANTD_ASSIGN_OR_RETURN(spec.short_factor, FactorList(s, "short_factor", half));
    QUANTD_ASSIGN_OR_RETURN(spec.long_factor, FactorList(s, "long_factor", half));
    QUANTD_ASSIGN_OR_RETURN(std::optional<int64_t> orig,
                            checkpoint::ConfigInt(config, "original_max_position_embeddings"));
    if (!orig || *orig <= 0 || *orig > spec.max_positions) {
      return absl::InvalidArgumentError(
          "config.json: LongRoPE needs original_max_position_embeddings in 1 .. "
          "max_position_embeddings");
    }
    spec.original_positions = *orig;
    const double scale =
        static_cast<double>(spec.max_positions) / static_cast<double>(spec.original_positions);
    const double fallback =
        scale <= 1.0 ? 1.0
                     : std::sqrt(1.0 + std::log(scale) /
                                           std::log(static_cast<double>(spec.original_positions)));
    auto mscale = [&](const char* key) {
      auto m = s.find(key);
      if (m != s.end() && m->is_number() && m->get<double>() > 0) return m->get<double>();
      return fallback;
    };
    spec.short_mscale = static_cast<float>(mscale("short_mscale"));
    spec.long_mscale = static_cast<float>(mscale("long_mscale"));
    return spec;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("config.json: rope_scaling type '", type,
                   "' is not supported for ONNX export (supported: default, linear, longrope)"));
}

RopeTable ComputeRopeTable(const RopeSpec& spec, bool large) {
  RopeTable t;
  const bool use_large = spec.longrope && large;
  t.rows = spec.longrope && !large ? spec.original_positions : spec.max_positions;
  t.cols = spec.rotary_dim / 2;
  const float mscale = !spec.longrope ? 1.0f : (use_large ? spec.long_mscale : spec.short_mscale);
  std::vector<float> inv_freq(static_cast<size_t>(t.cols));
  for (int64_t i = 0; i < t.cols; ++i) {
    // float32 throughout, as torch computes it: theta ** (arange(0, rot, 2) / rot).
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(spec.rotary_dim);
    float base = std::pow(static_cast<float>(spec.theta), exponent);
    if (spec.longrope) base *= (use_large ? spec.long_factor : spec.short_factor)[i];
    inv_freq[i] = 1.0f / base;
  }
  t.cos.resize(static_cast<size_t>(t.rows * t.cols));
  t.sin.resize(t.cos.size());
  for (int64_t p = 0; p < t.rows; ++p) {
    const float pos = static_cast<float>(static_cast<double>(p) / spec.linear_factor);
    for (int64_t i = 0; i < t.cols; ++i) {
      const float angle = pos * inv_freq[i];
      t.cos[p * t.cols + i] = std::cos(angle) * mscale;
      t.sin[p * t.cols + i] = std::sin(angle) * mscale;
    }
  }
  return t;
}

}  // namespace quantd::core::genai
