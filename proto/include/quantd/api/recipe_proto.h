// The recipe across the API: quantd.v1.Recipe <-> core::Recipe, in one place
// for the server (requests in) and quantctl (flags out).
//
// Library `quantd_recipe_proto`: the API messages plus `quantd_recipe`
// (Abseil only) - no numerics, no server.
//
// Thread safety: pure functions.
#ifndef QUANTD_API_RECIPE_PROTO_H_
#define QUANTD_API_RECIPE_PROTO_H_

#include "absl/status/statusor.h"
#include "quantd/core/recipe.h"
#include "quantd/v1/quantd.pb.h"

namespace quantd::api {

// API recipe -> core recipe: the preset (if any) first, then every field the
// request sets. InvalidArgument for an unknown preset or enum value. Does not
// validate (core::ValidateRecipe does).
absl::StatusOr<core::Recipe> RecipeFromProto(const v1::Recipe& proto);

// Core recipe -> API recipe with every field set explicitly (the preset name
// too, informational), so a stored or submitted job does not depend on the
// server's preset table. Two exceptions: keep_embeddings is set only when the
// recipe sets it (unset, the format decides: see core::KeepEmbeddings), and
// the MLX fields (bits, group_size, mlx_recipe) only for format MLX.
v1::Recipe RecipeToProto(const core::Recipe& recipe);

core::ModelFormat FormatFromProto(v1::ModelFormat format);

}  // namespace quantd::api

#endif  // QUANTD_API_RECIPE_PROTO_H_
