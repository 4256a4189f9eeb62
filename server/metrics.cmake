# quantd_metrics: the Prometheus metrics object (issue 7).
find_package(prometheus-cpp CONFIG REQUIRED)
add_library(quantd_metrics STATIC metrics.cc)
target_include_directories(quantd_metrics PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include)
target_link_libraries(quantd_metrics PUBLIC prometheus-cpp::core prometheus-cpp::pull)
