# Producers' refusal of unusable inputs (failed / all-zero calibrations): included from
# tests/models/CMakeLists.txt. The library-level checks are doctests in the model test
# executables (event_file_test.cc, calibration_test.cc, wmass_test.cc, dilepton_test.cc).
if(TARGET lepus)
  add_test(NAME cli.produce_refuses_failed_calibration
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/produce_inputs_test.sh $<TARGET_FILE:lepus>
                   ${CMAKE_CURRENT_BINARY_DIR}/work/produce_inputs)
  set_tests_properties(cli.produce_refuses_failed_calibration PROPERTIES TIMEOUT 120 LABELS cli)
endif()
