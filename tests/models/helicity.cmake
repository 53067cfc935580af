# The helicity cross-section fit (models/helicity.h, `lepus produce helicity`): included
# optionally from tests/models/CMakeLists.txt.
lepus_add_test(NAME lepus_helicity_tests
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/helicity_test.cc
  LIBS lepus_models lepus_io lepus_engine)

find_program(LEPUS_H5DUMP h5dump)
find_program(LEPUS_JQ_PRODUCE jq)
if(TARGET lepus AND LEPUS_H5DUMP AND LEPUS_JQ_PRODUCE)
  add_test(NAME cli.produce_helicity
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/produce_helicity_cli_test.sh $<TARGET_FILE:lepus>
                   ${CMAKE_CURRENT_BINARY_DIR}/work/produce_helicity)
  set_tests_properties(cli.produce_helicity PROPERTIES TIMEOUT 300 LABELS cli)
endif()
