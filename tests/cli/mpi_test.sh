#!/usr/bin/env bash
# mpi_test.sh LEPUS INPUT TMPDIR: `mpirun -np K lepus toys|scan` for K = 1, 2, 3 against one
# process without mpirun (docs/scaling.md):
#  * toys (-n 11, an uneven split) and a 1D scan (7 points) and a 2D scan (4 x 4, --minos): exit
#    0, the JSON equal to the single-process JSON apart from command line and timings, every
#    HDF5 dataset equal bit for bit (h5dump -A 0 with 17 significant digits);
#  * failure: rank 1 of 2 gets a missing input file: exit 1, the message names rank 1 and the
#    file, no output written (rank 0 was waiting in the gather and is stopped);
#  * a bad flag on every rank: exit 1 and the message.
# Exit 77 (skipped) when lepus is built without MPI or mpirun is missing.
set -uo pipefail
lepus=$1 input=$2 tmp=$3
if ! "$lepus" --version | grep -q "^mpi: .*[0-9]"; then
  echo "SKIP: lepus is built without MPI ($("$lepus" --version | grep mpi)); install libopenmpi-dev (scripts/setup.sh)"
  exit 77
fi
if ! command -v mpirun >/dev/null; then
  echo "SKIP: mpirun not found (Debian: openmpi-bin, scripts/setup.sh)"
  exit 77
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
mpirun=(mpirun --oversubscribe -np)
rm -rf "$tmp" && mkdir -p "$tmp"
fail() { echo "FAIL: $*"; exit 1; }
strip='del(.command_line, .timings, .threads)'
datasets() { h5dump -A 0 -m %.17g "$1" | tail -n +2; }

run_all() {  # run_all NAME ARGS...: one process, then K = 1, 2, 3 ranks; compare
  local name=$1
  shift
  "$lepus" "$@" --json "$tmp/$name.0.json" -o "$tmp/$name.0.h5" 2>"$tmp/$name.0.err" \
    || { cat "$tmp/$name.0.err"; fail "$name: single process: exit code"; }
  for k in 1 2 3; do
    "${mpirun[@]}" "$k" "$lepus" "$@" --json "$tmp/$name.$k.json" -o "$tmp/$name.$k.h5" \
      2>"$tmp/$name.$k.err" || { cat "$tmp/$name.$k.err"; fail "$name: $k ranks: exit code"; }
    [[ "$(jq -S "$strip" "$tmp/$name.0.json")" == "$(jq -S "$strip" "$tmp/$name.$k.json")" ]] \
      || fail "$name: $k ranks: JSON differs: $(diff <(jq -S "$strip" "$tmp/$name.0.json") <(jq -S "$strip" "$tmp/$name.$k.json") | head -20)"
    cmp -s <(datasets "$tmp/$name.0.h5") <(datasets "$tmp/$name.$k.h5") \
      || fail "$name: $k ranks: HDF5 datasets differ: $(diff <(datasets "$tmp/$name.0.h5") <(datasets "$tmp/$name.$k.h5") | head -20)"
    if [[ $k -gt 1 ]]; then
      grep -q "$k MPI ranks" "$tmp/$name.$k.err" || { cat "$tmp/$name.$k.err"; fail "$name: $k ranks: no rank line"; }
    fi
  done
  echo "ok: $name at 1, 2, 3 ranks equals one process"
}

run_all toys toys "$input" --no-bbstat -n 11 --seed 5
jq -e '.ntoys == 11 and .converged == 11' "$tmp/toys.3.json" >/dev/null || fail "toys: $(jq -c . "$tmp/toys.3.json")"
run_all scan scan "$input" --no-bbstat --param sig --points 7
run_all scan2d scan "$input" --no-bbstat --param sig --param2 syst6 --points 4 --minos

# Failure on one rank: rank 1 reads a file that does not exist; every rank stops, no output.
"${mpirun[@]}" 2 bash -c 'if [[ $OMPI_COMM_WORLD_RANK == 1 ]]; then in=$0.missing.h5; else in=$0; fi
  exec "$1" toys "$in" --no-bbstat -n 40 --json "$2"' "$input" "$lepus" "$tmp/fail.json" \
  >"$tmp/fail.out" 2>"$tmp/fail.err"
code=$?
[[ $code -eq 1 ]] || { cat "$tmp/fail.err"; fail "failing rank: exit code $code, expected 1"; }
grep -q "lepus: error: rank 1 of 2: .*missing\.h5: no such file" "$tmp/fail.err" \
  || { cat "$tmp/fail.err"; fail "failing rank: message"; }
[[ ! -e "$tmp/fail.json" ]] || fail "failing rank: an output was written"
[[ -z "$(find "$tmp" -name '*.tmp*' -o -name '.*fail*')" ]] || fail "failing rank: temporary left: $(ls -a "$tmp")"
echo "ok: a failing rank stops the job with its message, no output"

# Bad input on every rank: exit 1 and the message.
"${mpirun[@]}" 2 "$lepus" toys "$input" -n 0 >/dev/null 2>"$tmp/bad.err"
code=$?
[[ $code -eq 1 ]] || { cat "$tmp/bad.err"; fail "bad flag: exit code $code"; }
grep -q "lepus: error: .*--ntoys" "$tmp/bad.err" || { cat "$tmp/bad.err"; fail "bad flag: message"; }
echo "ok: bad flags under mpirun: exit 1"

# A command that is not distributed refuses to run on several ranks (it would write N times).
"${mpirun[@]}" 2 "$lepus" fit "$input" --no-bbstat --json "$tmp/fit.json" >/dev/null 2>"$tmp/fit.err"
code=$?
[[ $code -eq 1 ]] || { cat "$tmp/fit.err"; fail "fit on 2 ranks: exit code $code"; }
grep -q "lepus: error: 'fit' does not run on several MPI ranks" "$tmp/fit.err" \
  || { cat "$tmp/fit.err"; fail "fit on 2 ranks: message"; }
[[ ! -e "$tmp/fit.json" ]] || fail "fit on 2 ranks: an output was written"
# ... and runs under mpirun -np 1 as without mpirun.
"${mpirun[@]}" 1 "$lepus" fit "$input" --no-bbstat --json "$tmp/fit1.json" 2>/dev/null \
  || fail "fit on 1 rank: exit code"
"$lepus" fit "$input" --no-bbstat --json "$tmp/fit0.json" 2>/dev/null || fail "fit: exit code"
[[ "$(jq -S "$strip" "$tmp/fit0.json")" == "$(jq -S "$strip" "$tmp/fit1.json")" ]] \
  || fail "fit on 1 rank differs from a plain run"
echo "ok: non-distributed commands refuse several ranks, run on one"
