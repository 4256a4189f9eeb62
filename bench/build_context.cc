// Records in every Google Benchmark run's context how the benchmark was
// built (bench/CMakeLists.txt compiles each benchmark -O3 -DNDEBUG and sets
// the two macros), and warns on stderr when the Quantd libraries it links
// are not optimised. Linked into every Google Benchmark executable; runs
// before main (Google Benchmark's context must be set before Initialize).
#include <cstdio>
#include <cstring>

#include "benchmark/benchmark.h"

namespace {

bool RecordBuildContext() {
  benchmark::AddCustomContext("quantd_build_type", QUANTD_BENCH_BUILD_TYPE);
  benchmark::AddCustomContext("quantd_libraries_optimized", QUANTD_BENCH_LIBRARIES_OPTIMIZED);
  if (std::strcmp(QUANTD_BENCH_LIBRARIES_OPTIMIZED, "yes") != 0) {
    std::fprintf(stderr,
                 "***WARNING*** Quantd libraries built as '%s' (not optimised): timings are not "
                 "representative; configure with -DCMAKE_BUILD_TYPE=Release\n",
                 QUANTD_BENCH_BUILD_TYPE);
  }
  return true;
}

[[maybe_unused]] const bool kBuildContextRecorded = RecordBuildContext();

}  // namespace
