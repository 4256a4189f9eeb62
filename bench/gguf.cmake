# GGUF benchmarks: kernel micro-benchmarks and the model generator
# used by bench/gguf_speed.sh. Not part of CTest.
add_executable(gguf_gen_model ${CMAKE_CURRENT_LIST_DIR}/gguf_gen_model.cc)
target_link_libraries(gguf_gen_model PRIVATE quantd_gguf)

add_executable(gguf_kernels_bench ${CMAKE_CURRENT_LIST_DIR}/gguf_kernels_bench.cc)
target_link_libraries(gguf_kernels_bench PRIVATE quantd_gguf benchmark::benchmark)
quantd_benchmark_build(gguf_kernels_bench)
