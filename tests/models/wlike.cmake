# The W-like Z-mass analysis and the charge / eta-split masses (models/wmass.h,
# models/mass_split.h; docs/wlike.md): included from tests/models/CMakeLists.txt.
lepus_add_test(NAME lepus_wlike_tests
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/wlike_test.cc
  LIBS lepus_models lepus_io lepus_engine)

# `lepus produce wlike` end to end: both parities fitted, split masses with --combine against
# the difference parameter, 1 and 2 threads, error messages (needs the lepus command, h5dump, jq).
find_program(LEPUS_JQ_WLIKE jq)
find_program(LEPUS_H5DUMP_WLIKE h5dump)
if(TARGET lepus AND LEPUS_JQ_WLIKE AND LEPUS_H5DUMP_WLIKE)
  add_test(NAME cli.produce_wlike
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/wlike_cli_test.sh $<TARGET_FILE:lepus>
                   ${CMAKE_CURRENT_BINARY_DIR}/work/produce_wlike)
  set_tests_properties(cli.produce_wlike PROPERTIES TIMEOUT 300 LABELS cli)
endif()
