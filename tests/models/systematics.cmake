# Systematics models (theory variations, momentum calibration, efficiency variations, non-prompt
# ABCD): included from tests/models/CMakeLists.txt.
lepus_add_test(NAME lepus_systematics_tests
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/theory_variations_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/calibration_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/efficiency_variations_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/nonprompt_test.cc
  LIBS lepus_models lepus_io)
