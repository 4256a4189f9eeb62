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
#include "absl/strings/string_view.h"
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

// The flags that give `field` (named as in quantd.v1.Recipe: "block_size")
// the value it has in `recipe`, defaults included ({"--block-size", "32"});
// empty for an unknown field, or a value no flag spells (an empty gguf_type).
std::vector<std::string> FieldFlags(const Recipe& recipe, absl::string_view field);

// The flags a preset shows (`quantd presets`): FieldFlags of each of its
// fields, in order. ParseRecipeFlags of them gives the preset's recipe.
std::vector<std::string> PresetFlags(const Preset& preset);

// The command-line flags that set a recipe field: "gguf_type" ->
// {"--gguf-type"}, "symmetric" -> {"--symmetric", "--asymmetric"}; empty for
// a name that is not a field.
std::vector<std::string> FlagsForField(absl::string_view field);

// For CLIs printing a core or server error: `message`, plus a hint naming
// the flags of every recipe field the message mentions (as a word, not
// inside a flag), e.g. "gguf_type needs a GGUF input; this input is ONNX"
// -> "... [flags: gguf_type: --gguf-type]". Unchanged when it names none.
std::string WithFlagHint(absl::string_view message);

}  // namespace quantd::core

#endif  // QUANTD_CORE_RECIPE_FLAGS_H_
