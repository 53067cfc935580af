# The missing pieces of the muon momentum calibration (issue 5): the Z -> mu mu closure
# (models/zclosure.h), the resolution measurement, J/psi events from event files
# (models/jpsi_calibration.h); lepus::calibration links Ceres. Included (OPTIONAL) from
# tests/models/CMakeLists.txt.
lepus_add_test(NAME lepus_calibration_z_tests
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/calibration_z_test.cc
  LIBS lepus_calibration lepus_models lepus_io)

# CLI: generate/read J/psi files, zclosure, a wrong calibration detected, and the W fit with the
# calibration's stat and closure impacts as separate groups (tests/cli/calibrate_closure_test.sh,
# needs jq); the flag errors of the new options.
if(TARGET lepus)
  find_program(LEPUS_BASH bash)
  find_program(LEPUS_JQ jq)
  set(_cal_cli ${CMAKE_CURRENT_LIST_DIR}/../cli)
  set(_cal_work ${CMAKE_CURRENT_BINARY_DIR}/work/calibration_z)
  if(LEPUS_BASH AND LEPUS_JQ)
    add_test(NAME cli.calibrate_closure
             COMMAND ${LEPUS_BASH} ${_cal_cli}/calibrate_closure_test.sh $<TARGET_FILE:lepus>
                     ${_cal_work})
    set_tests_properties(cli.calibrate_closure PROPERTIES TIMEOUT 300 LABELS cli)
  endif()
  function(lepus_calibration_cli_error name regex)
    add_test(NAME cli.error.${name}
             COMMAND ${LEPUS_BASH} ${_cal_cli}/expect_exit.sh 1 ${regex} -- $<TARGET_FILE:lepus>
                     ${ARGN})
    set_tests_properties(cli.error.${name} PROPERTIES TIMEOUT 60 LABELS cli)
  endfunction()
  if(LEPUS_BASH)
    lepus_calibration_cli_error(calibrate_events_alone
      "lepus: error: --events needs --data-events too"
      calibrate jpsi --light --events ${_cal_work}/s.h5 -o ${_cal_work}/c.json)
    lepus_calibration_cli_error(calibrate_events_and_generate
      "lepus: error: --generate excludes --events/--data-events"
      calibrate jpsi --light -n 1000 --events a.h5 --data-events b.h5 -o ${_cal_work}/c.json)
    lepus_calibration_cli_error(calibrate_events_missing_file
      "lepus: error: .*no_such_jpsi\\.h5"
      calibrate jpsi --light --events no_such_jpsi.h5 --data-events no_such_jpsi.h5
      -o ${_cal_work}/c.json)
    lepus_calibration_cli_error(zclosure_no_calibration
      "lepus: error: .*no_such_cal\\.json: cannot open the calibration file"
      calibrate zclosure -c ${_cal_work}/no_such_cal.json -o ${_cal_work}/c.json)
    lepus_calibration_cli_error(zclosure_requires_calibration "calibration.*required|REQUIRED"
      calibrate zclosure -o ${_cal_work}/c.json)
    lepus_calibration_cli_error(zclosure_zero_events "lepus: error: --generate is 0, but must be an integer in \\[1, 1000000000000\\]"
      calibrate zclosure -c x.json -n 0 -o ${_cal_work}/c.json)
    lepus_calibration_cli_error(generate_jpsi_combined
      "lepus: error: --process: jpsi cannot be combined with other processes"
      generate --process jpsi,wplus -n 10 -o ${_cal_work}/j.h5)
    lepus_calibration_cli_error(generate_jpsi_lumi
      "lepus: error: --lumi does not apply to --process jpsi"
      generate --process jpsi -n 10 --lumi 5 -o ${_cal_work}/j.h5)
  endif()
endif()
