# The histogramming framework and the W-mass producer (models/histogram.h, models/wmass.h):
# included from tests/models/CMakeLists.txt.
lepus_add_test(NAME lepus_wmass_tests
  SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/histogram_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/wmass_test.cc
    ${CMAKE_CURRENT_LIST_DIR}/attenuation_test.cc
  LIBS lepus_models lepus_io lepus_engine)

# `lepus produce wmass` end to end and its error messages (needs the lepus command, h5dump, jq).
find_program(LEPUS_H5DUMP h5dump)
find_program(LEPUS_JQ_PRODUCE jq)
if(TARGET lepus AND LEPUS_H5DUMP AND LEPUS_JQ_PRODUCE)
  add_test(NAME cli.produce_wmass
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/produce_cli_test.sh $<TARGET_FILE:lepus>
                   ${CMAKE_CURRENT_BINARY_DIR}/work/produce)
  set_tests_properties(cli.produce_wmass PROPERTIES TIMEOUT 300 LABELS cli)
endif()
