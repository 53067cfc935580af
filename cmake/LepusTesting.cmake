# lepus_add_test(NAME <exe> SOURCES <files...> LIBS <targets...>)
# Builds one doctest executable and registers each TEST_CASE with ctest.
include(${doctest_DIR}/doctest.cmake OPTIONAL RESULT_VARIABLE _lepus_doctest_module)
if(NOT _lepus_doctest_module)
  include(/usr/lib/cmake/doctest/doctest.cmake)
endif()

# The conformance kit lives beside the project (../shared/conformance); tests/data holds a copy.
if(NOT LEPUS_CONFORMANCE_DIR)
  set(LEPUS_CONFORMANCE_DIR "${CMAKE_SOURCE_DIR}/tests/data/conformance")
endif()

function(lepus_add_test)
  cmake_parse_arguments(T "" "NAME" "SOURCES;LIBS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE lepus_test_main ${T_LIBS})
  target_compile_options(${T_NAME} PRIVATE ${LEPUS_WARNINGS})
  doctest_discover_tests(${T_NAME} TEST_PREFIX "${T_NAME}:" WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
endfunction()
