# quantd_metrics: the Prometheus metrics object. Its job label vocabularies
# come from the core's tables (recipe precisions, GGUF file types).
find_package(prometheus-cpp CONFIG REQUIRED)
add_library(quantd_metrics STATIC metrics.cc)
target_include_directories(quantd_metrics PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include)
target_link_libraries(quantd_metrics PUBLIC prometheus-cpp::core prometheus-cpp::pull)
target_link_libraries(quantd_metrics PRIVATE quantd_core)
