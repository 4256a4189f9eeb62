// Finding NaN and infinite values in weights before they are quantized: a
// quantizer would turn them into an infinite scale or an undefined float ->
// int conversion, so the core refuses them (naming the tensor and element)
// before any output is written.
//
// The scans read through memcpy (any alignment), test the exponent bits
// (all ones = NaN or infinity), and run in chunks with a branch-free
// reduction the compiler vectorizes; the exact index is searched only in a
// chunk that has one. Pure functions; thread-safe.
#ifndef QUANTD_CORE_BASE_FINITE_H_
#define QUANTD_CORE_BASE_FINITE_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace quantd::core {

// Index of the first NaN or infinite element of `n` little-endian IEEE
// binary32 / binary16 / bfloat16 values at `data`, or -1 when all are
// finite.
int64_t FirstNonFiniteF32(const void* data, int64_t n);
int64_t FirstNonFiniteF16(const void* data, int64_t n);
int64_t FirstNonFiniteBF16(const void* data, int64_t n);

// Whether the `rows` x `width` floats at `data` (row stride `ld` floats) are
// all finite; for tiles already in cache.
bool AllFiniteF32Rows(const float* data, int64_t ld, int rows, int width);

// InvalidArgument: "tensor '<name>' element <index> is NaN|Inf|-Inf; ...".
// `value` is the element (as float) for the message; an empty `tensor`
// leaves the "tensor '<name>' " part out (the caller adds it).
absl::Status NonFiniteWeightError(absl::string_view tensor, int64_t index, float value);

}  // namespace quantd::core

#endif  // QUANTD_CORE_BASE_FINITE_H_
