# Scale-out benchmark: tiny-job throughput with 1..N quantd replicas on one
# PostgreSQL job store (started by the benchmark). Not part of CTest; run:
# quantd_scale_out_bench --quantd build/server/quantd [--replicas 3] [--jobs 60]
add_executable(quantd_scale_out_bench ${CMAKE_CURRENT_LIST_DIR}/scale_out_bench.cc)
target_include_directories(quantd_scale_out_bench PRIVATE ${PROJECT_SOURCE_DIR}/tests/testing)
target_link_libraries(quantd_scale_out_bench PRIVATE quantd_client absl::strings absl::time
  PkgConfig::LIBPQ)
# The test data folder as the tests find it (tests/CMakeLists.txt); the
# environment variable QUANTD_TESTDATA overrides it at run time.
if(QUANTD_SHARED_TESTDATA)
  set(_scale_out_testdata "${QUANTD_SHARED_TESTDATA}")
else()
  set(_scale_out_testdata "${PROJECT_SOURCE_DIR}/../shared/testdata")
endif()
target_compile_definitions(quantd_scale_out_bench PRIVATE
  QUANTD_TESTDATA="${_scale_out_testdata}")
