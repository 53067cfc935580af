# The missing pieces of the muon momentum calibration (issue 5): the Z -> mu mu closure
# (models/zclosure.h), the resolution measurement, J/psi events from event files
# (models/jpsi_calibration.h); lepus::calibration links Ceres. Included (OPTIONAL) from
# tests/models/CMakeLists.txt.
lepus_add_test(NAME lepus_calibration_z_tests
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/calibration_z_test.cc
  LIBS lepus_calibration lepus_models lepus_io)
