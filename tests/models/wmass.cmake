# The histogramming framework and the W-mass producer (models/histogram.h, models/wmass.h):
# included from tests/models/CMakeLists.txt.
lepus_add_test(NAME lepus_wmass_tests
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/histogram_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/wmass_test.cc
  LIBS lepus_models lepus_io lepus_engine)
