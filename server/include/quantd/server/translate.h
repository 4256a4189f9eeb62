// The one place where API types (quantd.v1 protos, grpc::Status) and core
// types (core::Recipe, core::Report, absl::Status) are translated.
//
// Thread safety: pure functions.
#ifndef QUANTD_SERVER_TRANSLATE_H_
#define QUANTD_SERVER_TRANSLATE_H_

#include <string>
#include <utility>

#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "quantd/api/recipe_proto.h"
#include "quantd/core/recipe.h"
#include "quantd/core/report.h"
#include "quantd/v1/quantd.pb.h"

namespace quantd::server {

// Recipe translation lives in quantd_recipe_proto (shared with quantctl).
using api::RecipeFromProto;
using api::RecipeToProto;
// ValidateRecipe plus the checks that need the model's format.
absl::Status ValidateRecipeForModel(const core::Recipe& recipe, v1::ModelFormat format);

// Core report -> API report; output file paths become plain file names.
v1::Report ReportToProto(const core::Report& report);

// absl::Status -> grpc::Status: the codes map one to one; a message longer
// than 1 KiB is cut there (its length noted), so no status can exceed gRPC's
// metadata limit.
grpc::Status ToGrpcStatus(const absl::Status& status);
// "INVALID_ARGUMENT", "OK", ...
std::string StatusCodeName(absl::StatusCode code);
// Short failure class for metrics: "invalid_model", "unsupported", ...
std::string FailureReason(absl::StatusCode code);
// Bounded metric labels of a job: {format, precision}.
std::pair<std::string, std::string> JobMetricLabels(const v1::Recipe& recipe);

}  // namespace quantd::server

#endif  // QUANTD_SERVER_TRANSLATE_H_
