#!/usr/bin/env bash
# mpi_test.sh LEPUS INPUT TMPDIR: `mpirun -np K lepus toys|scan|fit --impact-refit-regex|
# calibrate jpsi` for K = 1, 2, 3 against one process without mpirun (docs/scaling.md):
#  * toys (-n 11, an uneven split), a 1D scan (7 points), a 2D scan (4 x 4, --minos) and the
#    refits of every nuisance (fit --impact-refit-regex '.*'): exit 0, the JSON equal to the
#    single-process JSON apart from command line and timings, every HDF5 dataset equal bit for
#    bit (h5dump -A 0 with 17 significant digits);
#  * calibrate jpsi (small batches, so that every rank has several): the calibration JSON equal
#    apart from its description (the command line);
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
source "$(dirname "${BASH_SOURCE[0]}")/../shell_lib.sh"
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
run_all refit fit "$input" --no-bbstat --impact-refit-regex '.*'
jq -e '(.impact_refit | length) > 3 and ([.impact_refit[].targets[].refit_up | type == "number"] | all)' \
  "$tmp/refit.3.json" >/dev/null || fail "refit: $(jq -c .impact_refit "$tmp/refit.3.json" | head -c 400)"

# calibrate jpsi: batches of 50000 events round robin; rank 0 appends them in batch order.
cal=(calibrate jpsi --light --generate 150000 --sim-factor 2 --batch-events 50000 --quiet)
"$lepus" "${cal[@]}" -o "$tmp/cal.0.json" 2>"$tmp/cal.0.err" || { cat "$tmp/cal.0.err"; fail "calibrate: single process"; }
for k in 1 2 3; do
  "${mpirun[@]}" "$k" "$lepus" "${cal[@]}" -o "$tmp/cal.$k.json" 2>"$tmp/cal.$k.err" \
    || { cat "$tmp/cal.$k.err"; fail "calibrate: $k ranks: exit code"; }
  [[ "$(jq -S 'del(.description)' "$tmp/cal.0.json")" == "$(jq -S 'del(.description)' "$tmp/cal.$k.json")" ]] \
    || fail "calibrate: $k ranks: the calibration differs: $(diff <(jq -S . "$tmp/cal.0.json") <(jq -S . "$tmp/cal.$k.json") | head -20)"
  if [[ $k -gt 1 ]]; then
    grep -q "rank 0 received [0-9]* batch selections" "$tmp/cal.$k.err" || { cat "$tmp/cal.$k.err"; fail "calibrate: $k ranks: no receive line"; }
  fi
done
echo "ok: calibrate jpsi at 1, 2, 3 ranks equals one process"
# ... and from event files: each rank reads only its own chunks (the others' are skipped).
"$lepus" generate --process jpsi --data -n 100000 --seed 4 --threads 2 -o "$tmp/jd.h5" 2>/dev/null || fail "generate jpsi data"
"$lepus" generate --process jpsi -n 200000 --seed 4 --threads 2 -o "$tmp/js.h5" 2>/dev/null || fail "generate jpsi simulation"
calf=(calibrate jpsi --light --events "$tmp/js.h5" --data-events "$tmp/jd.h5" --batch-events 30000 --quiet)
"$lepus" "${calf[@]}" -o "$tmp/calf.0.json" 2>"$tmp/calf.0.err" || { cat "$tmp/calf.0.err"; fail "calibrate files: single process"; }
for k in 2 3; do
  "${mpirun[@]}" "$k" "$lepus" "${calf[@]}" -o "$tmp/calf.$k.json" 2>"$tmp/calf.$k.err" \
    || { cat "$tmp/calf.$k.err"; fail "calibrate files: $k ranks: exit code"; }
  [[ "$(jq -S 'del(.description)' "$tmp/calf.0.json")" == "$(jq -S 'del(.description)' "$tmp/calf.$k.json")" ]] \
    || fail "calibrate files: $k ranks: the calibration differs"
done
echo "ok: calibrate jpsi from event files at 2, 3 ranks equals one process"
# A corrupt data file on rank 1 of 2 (truncated copy): every rank stops with its message.
head -c 3000 "$tmp/jd.h5" >"$tmp/jd_corrupt.h5"
"${mpirun[@]}" 2 bash -c 'if [[ $OMPI_COMM_WORLD_RANK == 1 ]]; then d=$1_corrupt.h5; else d=$1.h5; fi
  exec "$0" calibrate jpsi --light --events "$2" --data-events "$d" --batch-events 30000 --quiet -o "$3"' \
  "$lepus" "$tmp/jd" "$tmp/js.h5" "$tmp/calfail.json" >/dev/null 2>"$tmp/calfail.err"
code=$?
[[ $code -eq 1 ]] || { cat "$tmp/calfail.err"; fail "calibrate, corrupt file on rank 1: exit code $code, expected 1"; }
grep -q "lepus: error: rank 1 of 2: .*jd_corrupt\.h5" "$tmp/calfail.err" \
  || { cat "$tmp/calfail.err"; fail "calibrate, corrupt file on rank 1: message"; }
[[ ! -e "$tmp/calfail.json" ]] || fail "calibrate, corrupt file on rank 1: an output was written"
echo "ok: calibrate jpsi: a corrupt event file on one rank stops the job, no output"

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
grep -q "lepus: error: rank [01] of 2: 'fit' runs on several MPI ranks (this job has 2) only to share out the refits" "$tmp/fit.err" \
  || { cat "$tmp/fit.err"; fail "fit on 2 ranks: message"; }
[[ ! -e "$tmp/fit.json" ]] || fail "fit on 2 ranks: an output was written"
# ... and runs under mpirun -np 1 as without mpirun.
"${mpirun[@]}" 1 "$lepus" fit "$input" --no-bbstat --json "$tmp/fit1.json" 2>/dev/null \
  || fail "fit on 1 rank: exit code"
"$lepus" fit "$input" --no-bbstat --json "$tmp/fit0.json" 2>/dev/null || fail "fit: exit code"
[[ "$(jq -S "$strip" "$tmp/fit0.json")" == "$(jq -S "$strip" "$tmp/fit1.json")" ]] \
  || fail "fit on 1 rank differs from a plain run"
echo "ok: non-distributed commands refuse several ranks, run on one"
