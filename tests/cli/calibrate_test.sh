#!/usr/bin/env bash
# calibrate_test.sh LEPUS TMPDIR: `lepus calibrate jpsi --light` converges, prints the Ceres
# summary and the parameters vs the hidden truth, writes a calibration file (schema, 12 bins,
# 36 x 36 covariance), and gives the same numbers on stdout with `-o -` and at another thread
# count.
set -euo pipefail
lepus=$1 tmp=$2
mkdir -p "$tmp"
"$lepus" calibrate jpsi --light -n 400000 --seed 4 --threads 2 -o "$tmp/cal.json" 2> "$tmp/cal.log"
for pattern in "Ceres Solver Report" "J/psi calibration: converged" "mass bins" \
               "fitted - truth: chi2" "wrote $tmp/cal.json"; do
  grep -q "$pattern" "$tmp/cal.log" || { echo "FAIL: no '$pattern' on stderr"; cat "$tmp/cal.log"; exit 1; }
done
grep -q '"schema": "lepus-muon-calibration"' "$tmp/cal.json" || { echo "FAIL: schema"; exit 1; }
"$lepus" calibrate jpsi --light -n 400000 --seed 4 --threads 1 -q -o - > "$tmp/cal_stdout.json" 2> "$tmp/cal2.log"
if command -v jq >/dev/null 2>&1; then
  [ "$(jq '.A | length' "$tmp/cal.json")" = 12 ] || { echo "FAIL: 12 bins expected"; exit 1; }
  [ "$(jq '.covariance | length' "$tmp/cal.json")" = 36 ] || { echo "FAIL: 36 covariance rows"; exit 1; }
  for key in A e M covariance eta_edges; do
    a=$(jq -c ".$key" "$tmp/cal.json") b=$(jq -c ".$key" "$tmp/cal_stdout.json")
    [ "$a" = "$b" ] || { echo "FAIL: .$key differs between the file and stdout / 1 and 2 threads"; exit 1; }
  done
fi
echo ok
