# MLX benchmarks: affine kernel throughput, and a Phi-3.5-mini-shaped
# checkpoint -> MLX folder (wall time, peak RSS): `mlx_bench folder OUT_DIR`.
add_executable(mlx_bench mlx_bench.cc)
target_link_libraries(mlx_bench PRIVATE quantd_mlx benchmark::benchmark)
quantd_benchmark_build(mlx_bench)
# The AVX2 variant through core/quant's private header.
target_include_directories(mlx_bench PRIVATE ${PROJECT_SOURCE_DIR})
