#!/usr/bin/env bash
# mpi_produce_test.sh LEPUS TMPDIR: `mpirun -np K lepus produce wmass|wlike|helicity|dilepton` for
# K = 1, 2, 3 against one process without mpirun (docs/scaling.md): small generated samples (and
# dilepton from event files, small chunks so that every rank has items); the fit inputs must be
# identical files (h5diff: every dataset and attribute). A rank that reads a corrupt event file
# stops the job: exit 1, its message, no output. Exit 77 (skipped) without MPI.
set -uo pipefail
lepus=$1 tmp=$2
if ! "$lepus" --version | grep -q "^mpi: .*[0-9]"; then
  echo "SKIP: lepus is built without MPI ($("$lepus" --version | grep mpi)); install libopenmpi-dev (scripts/setup.sh)"
  exit 77
fi
command -v mpirun >/dev/null || { echo "SKIP: mpirun not found (Debian: openmpi-bin)"; exit 77; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
mpirun=(mpirun --oversubscribe -np)
rm -rf "$tmp" && mkdir -p "$tmp"
source "$(dirname "${BASH_SOURCE[0]}")/../shell_lib.sh"

cat >"$tmp/wmass.json" <<'JSON'
{"lepus_config_version": 1, "preset": "light", "simulation": {"events": 150000},
 "luminosity_pb": 5, "chunk_events": 8192}
JSON
cat >"$tmp/wlike.json" <<'JSON'
{"lepus_config_version": 1, "producer": "wlike", "preset": "light", "binning": {"eta_bins": 24},
 "simulation": {"events": 150000}, "luminosity_pb": 20, "chunk_events": 8192}
JSON
cat >"$tmp/helicity.json" <<'JSON'
{"lepus_config_version": 1, "producer": "helicity", "preset": "light",
 "binning": {"eta_bins": 24, "pt_bins": 15}, "simulation": {"events": 150000},
 "luminosity_pb": 5, "chunk_events": 8192, "systematics": {"nonprompt": {"enabled": false}}}
JSON
cat >"$tmp/dilepton.json" <<'JSON'
{"lepus_config_version": 1, "producer": "dilepton", "preset": "light",
 "simulation": {"events": 150000}, "luminosity_pb": 10, "chunk_events": 8192}
JSON

check() {  # check NAME ARGS...: one process, then 1, 2, 3 ranks; identical files
  local name=$1
  shift
  "$lepus" "$@" --threads 2 -o "$tmp/$name.0.h5" 2>"$tmp/$name.0.log" \
    || { cat "$tmp/$name.0.log"; fail "$name: single process: exit code"; }
  for k in 1 2 3; do
    "${mpirun[@]}" "$k" "$lepus" "$@" --threads 1 -o "$tmp/$name.$k.h5" 2>"$tmp/$name.$k.log" \
      || { cat "$tmp/$name.$k.log"; fail "$name: $k ranks: exit code"; }
    h5diff "$tmp/$name.0.h5" "$tmp/$name.$k.h5" >"$tmp/$name.$k.diff" \
      || { head -20 "$tmp/$name.$k.diff"; fail "$name: $k ranks: the fit input differs from one process"; }
    if [[ $k -gt 1 ]]; then
      grep -q "$k MPI ranks" "$tmp/$name.$k.log" || { cat "$tmp/$name.$k.log"; fail "$name: $k ranks: no rank line"; }
      grep -q "produce \[" "$tmp/$name.$k.log" || { cat "$tmp/$name.$k.log"; fail "$name: $k ranks: no progress"; }
    fi
  done
  echo "ok: produce $name at 1, 2, 3 ranks equals one process"
}

check wmass produce wmass --config "$tmp/wmass.json"
check wlike produce wlike --config "$tmp/wlike.json"
check helicity produce helicity --config "$tmp/helicity.json"
check dilepton produce dilepton --config "$tmp/dilepton.json" --data-truth-mz-shift -25

# Event files (every rank opens them; items are file chunks).
"$lepus" generate --process zmumu,ztautau -n 20000 --seed 5 --min-muons 2 --batch 4096 -o "$tmp/zsim.h5" 2>/dev/null \
  || fail "generate zsim"
"$lepus" generate --process zmumu,ztautau -n 20000 --data --seed 6 --min-muons 2 --batch 4096 -o "$tmp/zdata.h5" 2>/dev/null \
  || fail "generate zdata"
echo '{"lepus_config_version": 1, "producer": "dilepton", "preset": "light", "chunk_events": 2048}' >"$tmp/files.json"
check files produce dilepton --config "$tmp/files.json" --events "$tmp/zsim.h5" --data-events "$tmp/zdata.h5"

# A corrupt event file on rank 1 of 2 (truncated copy): every rank stops with its message.
head -c 3000 "$tmp/zdata.h5" >"$tmp/zdata_corrupt.h5"
"${mpirun[@]}" 2 bash -c 'd=$1; [[ $OMPI_COMM_WORLD_RANK == 1 ]] && d=$2
  exec "$0" produce dilepton --config "$3" --events "$4" --data-events "$d" --threads 1 -o "$5"' \
  "$lepus" "$tmp/zdata.h5" "$tmp/zdata_corrupt.h5" "$tmp/files.json" "$tmp/zsim.h5" "$tmp/fail.h5" \
  >/dev/null 2>"$tmp/fail.err"
code=$?
[[ $code -eq 1 ]] || { cat "$tmp/fail.err"; fail "corrupt file on rank 1: exit code $code, expected 1"; }
grep -q "lepus: error: rank 1 of 2: .*zdata_corrupt\.h5" "$tmp/fail.err" \
  || { cat "$tmp/fail.err"; fail "corrupt file on rank 1: message"; }
[[ ! -e "$tmp/fail.h5" ]] || fail "corrupt file on rank 1: an output was written"
echo "ok: a corrupt event file on one rank stops the job, no output"
