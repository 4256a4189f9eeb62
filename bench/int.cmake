# INT4/INT8 benchmarks: kernel throughput vs memcpy, search quality.
# The >= 1 GiB end-to-end run is bench/int4_large_model.sh (not built).
add_executable(int4_bench int4_bench.cc)
target_link_libraries(int4_bench PRIVATE quantd_kernels benchmark::benchmark)
quantd_benchmark_build(int4_bench)
