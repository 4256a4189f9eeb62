# quantd_metrics: the Prometheus metrics object (owned by the observability work, issue 7).
if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/metrics.cc)
  find_package(prometheus-cpp CONFIG REQUIRED)
  add_library(quantd_metrics STATIC metrics.cc)
  target_include_directories(quantd_metrics PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include)
  target_link_libraries(quantd_metrics PUBLIC prometheus-cpp::core prometheus-cpp::pull)
endif()
