# LEPUS_SANITIZE: the `make sanitize` configuration (scripts/sanitize.sh). Every target is built
# with clang under AddressSanitizer + UndefinedBehaviorSanitizer (UB is fatal, not just logged)
# and with libFuzzer's coverage instrumentation (-fsanitize=fuzzer-no-link), so the fuzz targets
# in tests/fuzz see coverage inside lepus_io / lepus_models, not only in their own entry points.
# Never used by `make test` / CI (a Release build with the default compiler).
if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "LEPUS_SANITIZE needs clang (libFuzzer and the sanitizer runtimes): "
                      "configure with -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++")
endif()
set(LEPUS_SANITIZE_FLAGS
  -fsanitize=address,undefined -fno-sanitize-recover=undefined
  -O1 -g -fno-omit-frame-pointer)
add_compile_options(${LEPUS_SANITIZE_FLAGS} -fsanitize=fuzzer-no-link)
add_link_options(-fsanitize=address,undefined)
