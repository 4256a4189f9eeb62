// Shared test helper of the quantizer tests: two quality reports of the
// same quantization agree up to float summation order.
#ifndef QUANTD_TESTS_CORE_QUANT_QUALITY_EXPECT_H_
#define QUANTD_TESTS_CORE_QUANT_QUALITY_EXPECT_H_

#include <cmath>
#include <string>

#include "gtest/gtest.h"
#include "quantd/core/report.h"

namespace quantd::core::quant {

inline double Relative(double a, double b) { return std::fabs(a - b) / std::fabs(b); }

// Every figure is set in both; SQNR and the relative L2 error agree to 1e-5,
// the output error (a sum of products) to 1e-4, the max error exactly.
inline void ExpectSameFigures(const TensorReport& got, const TensorReport& want,
                              const std::string& where) {
  ASSERT_TRUE(got.sqnr_db && got.rel_l2_error && got.max_abs_error && got.rel_output_error)
      << where;
  ASSERT_TRUE(want.sqnr_db && want.rel_l2_error && want.max_abs_error && want.rel_output_error)
      << where;
  EXPECT_LT(Relative(*got.sqnr_db, *want.sqnr_db), 1e-5) << where;
  EXPECT_LT(Relative(*got.rel_l2_error, *want.rel_l2_error), 1e-5) << where;
  EXPECT_EQ(*got.max_abs_error, *want.max_abs_error) << where;
  EXPECT_LT(Relative(*got.rel_output_error, *want.rel_output_error), 1e-4) << where;
}

}  // namespace quantd::core::quant

#endif  // QUANTD_TESTS_CORE_QUANT_QUALITY_EXPECT_H_
