#!/usr/bin/env bash
# `make sanitize` (after scripts/setup.sh with LEPUS_SANITIZE=1 has built BUILD_DIR):
#   1. the whole ctest suite under AddressSanitizer + UndefinedBehaviorSanitizer (+ LeakSanitizer);
#      any report fails the test that produced it (halt_on_error, UB is not recoverable);
#   2. each libFuzzer target of tests/fuzz for FUZZ_RUNS inputs (default 100000) from its seed
#      corpus (tests/fuzz/corpus/<target>); new inputs go to BUILD_DIR/fuzz/corpus/<target>,
#      crashing inputs to BUILD_DIR/fuzz/artifacts/<target>/, the log to BUILD_DIR/fuzz/<target>.log.
# Usage: scripts/sanitize.sh [BUILD_DIR]   (default build-sanitize)
# Environment: FUZZ_RUNS, FUZZ_SEED (libFuzzer -seed, default 1), CTEST_TIMEOUT (default 1800),
# CTEST_ARGS (extra ctest arguments, e.g. "-R io_" while working on one part).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build_dir=${1:-build-sanitize}
runs=${FUZZ_RUNS:-100000}
seed=${FUZZ_SEED:-1}
supp=$root/tests/fuzz/sanitizer

# print_stacktrace: UBSan reports with a stack; halt_on_error + the build's
# -fno-sanitize-recover=undefined: the first report ends the process with a non-zero exit.
export ASAN_OPTIONS=halt_on_error=1:abort_on_error=0:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1:print_suppressions=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:suppressions=$supp/ubsan.supp
export LSAN_OPTIONS=suppressions=$supp/lsan.supp:print_suppressions=0

echo "sanitize: ctest under ASan + UBSan + LSan in $build_dir"
start=$(date +%s)
# shellcheck disable=SC2086
ctest --test-dir "$build_dir" --output-on-failure -j2 --timeout "${CTEST_TIMEOUT:-1800}" ${CTEST_ARGS:-}
echo "sanitize: ctest passed in $(( $(date +%s) - start )) s"

status=0
for target in fit_input meta_json config_json; do
  exe=$build_dir/tests/fuzz/lepus_fuzz_$target
  corpus=$build_dir/fuzz/corpus/$target
  artifacts=$build_dir/fuzz/artifacts/$target
  log=$build_dir/fuzz/$target.log
  mkdir -p "$corpus" "$artifacts"
  echo "sanitize: fuzz $target: $runs inputs (log $log)"
  # -timeout: one input taking longer than 30 s is a finding (a hang), as is rss above 2 GiB.
  if "$exe" -runs="$runs" -seed="$seed" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="$artifacts/" "$corpus" "$root/tests/fuzz/corpus/$target" >"$log" 2>&1; then
    grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb|^#[0-9]+.*DONE" "$log" | sed "s/^/  /"
  else
    echo "sanitize: fuzz $target: FINDING (inputs in $artifacts):" >&2
    tail -n 60 "$log" >&2
    status=1
  fi
done
if ((status == 0)); then
  echo "sanitize: clean (ctest and ${runs} inputs per fuzz target)"
fi
exit "$status"
