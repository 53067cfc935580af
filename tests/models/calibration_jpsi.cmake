# The J/psi momentum calibration (models/jpsi.h, models/jpsi_calibration.h; lepus::calibration,
# which links Ceres): included from tests/models/CMakeLists.txt.
lepus_add_test(NAME lepus_calibration_tests
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/jpsi_calibration_test.cc
  LIBS lepus_calibration lepus_models lepus_io)
