# The dilepton m_Z producer (models/dilepton.h): included from tests/models/CMakeLists.txt.
lepus_add_test(NAME lepus_dilepton_tests
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/dilepton_test.cc
  LIBS lepus_models lepus_io lepus_engine)

# `lepus produce dilepton` end to end (produce + fit with impacts) and its error messages
# (needs the lepus command, h5dump and jq).
find_program(LEPUS_H5DUMP h5dump)
find_program(LEPUS_JQ_PRODUCE jq)
if(TARGET lepus AND LEPUS_H5DUMP AND LEPUS_JQ_PRODUCE)
  add_test(NAME cli.produce_dilepton
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/dilepton_cli_test.sh $<TARGET_FILE:lepus>
                   ${CMAKE_CURRENT_BINARY_DIR}/work/produce_dilepton)
  set_tests_properties(cli.produce_dilepton PROPERTIES TIMEOUT 300 LABELS cli)
endif()
