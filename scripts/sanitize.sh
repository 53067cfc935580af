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
export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:strict_string_checks=1:check_initialization_order=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export LSAN_OPTIONS=print_suppressions=0

echo "sanitize: ctest under ASan + UBSan + LSan in $build_dir"
start=$(date +%s)
# shellcheck disable=SC2086
ctest --test-dir "$build_dir" --output-on-failure -j2 --timeout "${CTEST_TIMEOUT:-1800}" ${CTEST_ARGS:-}
echo "sanitize: ctest passed in $(( $(date +%s) - start )) s"

status=0
# Attributes a replayed finding (tests/fuzz/sanitizer/classify.awk): hdf5, lepus or none.
classify() { awk -f "$supp/classify.awk" "$1"; }

# The pickle target's seeds are written by Python's pickle (standard library only).
pickle_seeds=$build_dir/fuzz/seeds/pickle
rm -rf "$pickle_seeds"
python3 "$root/tests/data/rabbit_meta/make_pickles.py" "$pickle_seeds"
rm -f "$pickle_seeds"/*.json

for target in fit_input meta_json config_json pickle workspace; do
  exe=$build_dir/tests/fuzz/lepus_fuzz_$target
  corpus=$build_dir/fuzz/corpus/$target
  artifacts=$build_dir/fuzz/artifacts/$target
  log=$build_dir/fuzz/$target.log
  rm -rf "$artifacts"
  mkdir -p "$corpus" "$artifacts"
  lsan=print_suppressions=0
  # HDF5's own leaks on corrupt files (see the file); config_json, pickle and workspace do not touch HDF5.
  [[ $target != config_json && $target != pickle && $target != workspace ]] && lsan+=:suppressions=$supp/lsan-hdf5.supp
  seeds=("$root/tests/fuzz/corpus/$target")
  [[ $target == pickle ]] && seeds=("$pickle_seeds")
  mode=()
  if [[ $target == fit_input ]]; then
    # The conformance inputs are seeds too (not copied into tests/fuzz/corpus).
    seeds+=("$root/tests/data/conformance")
    # HDF5 1.10.8 itself crashes, runs out of memory or hangs on some corrupt files (e.g. a
    # memcpy of a garbage length in H5HG_read, GBs allocated for a corrupt vlen length); fork
    # mode keeps fuzzing past those and every saved input is replayed and attributed below.
    mode=(-fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1 -max_total_time=3600)
  fi
  echo "sanitize: fuzz $target: $runs inputs (log $log)"
  start=$(date +%s)
  # -timeout: an input taking longer than 3 s (30 s for the JSON targets) is a finding (a hang;
  # the valid seeds take < 0.2 s each under ASan), as is an rss above 2 GiB. allocator_may_return_null: malloc returns NULL for absurd
  # sizes as it does outside ASan (HDF5 then fails cleanly; lepus's new throws std::bad_alloc,
  # which is a finding).
  timeout=30
  [[ $target == fit_input ]] && timeout=3
  rc=0
  ASAN_OPTIONS=$ASAN_OPTIONS:allocator_may_return_null=1 LSAN_OPTIONS=$lsan \
    "$exe" -runs="$runs" -seed="$seed" -timeout=$timeout -rss_limit_mb=2048 "${mode[@]}" \
    -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" "${seeds[@]}" >"$log" 2>&1 || rc=$?
  secs=$(( $(date +%s) - start ))
  if [[ $target == fit_input ]]; then
    execs=$(grep -E "^#[0-9]+: cov" "$log" | tail -n 1 | sed -E 's/^#([0-9]+):.*/\1/' || true)
  else
    execs=$(grep -E "^stat::number_of_executed_units" "$log" | awk '{print $2}' || true)
  fi
  cov=$(grep -E "^#[0-9]+:?[[:space:]].*cov: " "$log" | tail -n 1 | sed -E 's/.*cov: ([0-9]+).*/\1/' || true)
  echo "  $target: ${execs:-?} inputs in $secs s, coverage $cov edges, exit $rc"
  hdf5=0
  for f in "$artifacts"/*; do
    [[ -e $f ]] || continue
    ASAN_OPTIONS=$ASAN_OPTIONS:allocator_may_return_null=1 LSAN_OPTIONS=$lsan \
      "$exe" -timeout=$timeout -rss_limit_mb=2048 "$f" >"$f.replay" 2>&1 || true
    kind=$(grep -m1 -oE "ERROR: [A-Za-z]+: [A-Za-z-]+|runtime error: .*|deadly signal" "$f.replay" || echo "no report on replay")
    where=$(classify "$f.replay")
    if [[ $where == hdf5 ]]; then
      hdf5=$((hdf5 + 1))
      echo "  $target: in HDF5 (third party, not instrumented): $(basename "$f"): $kind"
    elif [[ $where == none && $target == fit_input ]]; then
      # A fork-mode job runs many inputs in one process: memory HDF5 corrupted or leaked on an
      # earlier corrupt file can make a later, harmless input crash or exceed the rss limit.
      echo "  $target: does not reproduce alone (state left by earlier inputs): $(basename "$f")"
    else
      echo "sanitize: fuzz $target: FINDING in lepus: $f: $kind (report: $f.replay)" >&2
      status=1
    fi
  done
  if [[ $target != fit_input && $rc -ne 0 ]]; then
    echo "sanitize: fuzz $target: exit $rc (log $log):" >&2
    tail -n 40 "$log" >&2
    status=1
  fi
  if [[ -z ${execs:-} || ${execs:-0} -lt $runs ]]; then
    echo "sanitize: fuzz $target: ran ${execs:-0} of $runs inputs" >&2
    status=1
  fi
done
if ((status == 0)); then
  echo "sanitize: clean (ctest; ${runs} inputs per fuzz target, findings in HDF5 listed above)"
fi
exit "$status"
