// RecipeToProto: core::Recipe (parsed by the shared recipe flags) -> the API's
// quantd.v1.Recipe, for `quantctl quantize/submit`.
//
// The server holds the inverse (proto -> core) and its own copy of this
// direction in server/translate.cc, which is compiled into the server binary
// and drags in gRPC server code; the two should move into one small
// translation library both sides link.
//
// Thread safety: pure function.
#ifndef QUANTD_CLIENT_QUANTCTL_RECIPE_PROTO_H_
#define QUANTD_CLIENT_QUANTCTL_RECIPE_PROTO_H_

#include "quantd/core/recipe.h"
#include "quantd/v1/quantd.pb.h"

namespace quantd::quantctl {

// Every field is set explicitly (the preset name too, informational), so the
// server's reading of the recipe does not depend on its preset table: the
// job runs exactly what the flags said.
v1::Recipe RecipeToProto(const core::Recipe& recipe);

}  // namespace quantd::quantctl

#endif  // QUANTD_CLIENT_QUANTCTL_RECIPE_PROTO_H_
