#!/usr/bin/env bash
# fit_json_test.sh LEPUS INPUT TMPDIR [FIT FLAGS...]: `lepus fit INPUT --json - -o RESULTS`
# exits 0, prints valid JSON with a "status" on stdout (and nothing else), writes the HDF5
# results file, and prints the human report on stderr.
set -euo pipefail
lepus=$1 input=$2 tmp=$3
shift 3
mkdir -p "$tmp"
"$lepus" fit "$input" --json - -o "$tmp/results.h5" "$@" >"$tmp/out.json" 2>"$tmp/err.txt" \
  || { echo "FAIL: exit code $?"; cat "$tmp/err.txt"; exit 1; }
jq -e 'has("status") and has("parameters")' "$tmp/out.json" >/dev/null \
  || { echo "FAIL: stdout is not the JSON summary"; head -c 2000 "$tmp/out.json"; exit 1; }
[[ -s "$tmp/results.h5" ]] || { echo "FAIL: no HDF5 results"; exit 1; }
grep -q "fit status" "$tmp/err.txt" || { echo "FAIL: no report on stderr"; cat "$tmp/err.txt"; exit 1; }
cat "$tmp/err.txt"
echo "ok"
