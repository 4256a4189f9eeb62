// The recipe's command-line flags, defined once for `quantd quantize` and
// `quantctl quantize/submit`.
//
//   std::vector<std::string> rest;
//   Recipe r;
//   auto st = ParseRecipeFlags(args, &r, &rest);   // rest: non-recipe args
//
// Flags take `--name VALUE` or `--name=VALUE`; boolean flags take no value
// and have a `--no-` form where that makes sense.
#ifndef QUANTD_CORE_RECIPE_FLAGS_H_
#define QUANTD_CORE_RECIPE_FLAGS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "quantd/core/recipe.h"

namespace quantd::core {

// Consumes every recipe flag in `args` (applying --preset first, wherever it
// appears, so explicit flags override it); other arguments are appended to
// `rest` in order. InvalidArgument for unknown values or missing arguments.
// Does not call ValidateRecipe().
absl::Status ParseRecipeFlags(const std::vector<std::string>& args, Recipe* recipe,
                              std::vector<std::string>* rest);

// The flags' help text, one flag per line, for --help output.
std::string RecipeFlagsHelp();

// Recipe back to flags (the inverse of ParseRecipeFlags for non-default fields).
std::vector<std::string> RecipeToFlags(const Recipe& recipe);

}  // namespace quantd::core

#endif  // QUANTD_CORE_RECIPE_FLAGS_H_
