// The INT4 parameter search (`Int4Algorithm::kSearch`) for one block. Private
// to core/quant; used by the dispatching API and by the scalar reference.
//
// Pure function; thread-safe; no allocation.
#ifndef QUANTD_CORE_QUANT_INT4_SEARCH_H_
#define QUANTD_CORE_QUANT_INT4_SEARCH_H_

#include "int4_kernels.h"

namespace quantd::core::quant::int4 {

// Best (scale, zero point) of a block of `rows` values v (block min mn, max
// mx) for layout L: RTN first, then a grid of clipped ranges, then
// alternating refinement (codes for the scale, least-squares scale -- and
// zero point when asymmetric -- for the codes) from the best candidates. The
// lowest squared error, measured by `error`, wins; ties keep the earlier
// candidate, RTN first, so no block is ever worse than RTN. Every
// BlockErrorFn returns the same bits, so the result does not depend on the
// variant. Writes the chosen scale to *scale.
template <typename T, Int4Layout L>
BlockQ SearchParams(const float* v, int rows, float mn, float mx, const Int4Options& o,
                    BlockErrorFn error, T* scale);

}  // namespace quantd::core::quant::int4

#endif  // QUANTD_CORE_QUANT_INT4_SEARCH_H_
