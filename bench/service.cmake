# Service benchmark: loopback upload/download throughput of a large
# model against `cp`, and per-job overhead on a tiny model. Not part of CTest;
# run: quantd_service_bench --quantd build/server/quantd [--gib 1] [--jobs 20]
add_executable(quantd_service_bench ${CMAKE_CURRENT_LIST_DIR}/service_bench.cc)
target_link_libraries(quantd_service_bench PRIVATE quantd_client absl::strings absl::time)
target_compile_definitions(quantd_service_bench PRIVATE
  QUANTD_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
  QUANTD_TESTDATA="${PROJECT_SOURCE_DIR}/../shared/testdata")
