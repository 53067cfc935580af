#!/usr/bin/env bash
# pseudodata_test.sh LEPUS DEMO_INPUT TMPDIR: the un-fluctuated pseudo-data sets of the demo
# input give back their W-mass shift within 0.5 MeV (template interpolation only), and an
# --asimov fit gives back the prefit values (or the --set values it was generated at).
set -euo pipefail
lepus=$1 input=$2 tmp=$3
mkdir -p "$tmp"
for pair in m10:-10 0:0 p10:10; do
  name=mass_shift_${pair%%:*}MeV want=${pair##*:}
  "$lepus" fit "$input" --pseudodata "$name" --json "$tmp/$name.json" 2>/dev/null
  jq -e --argjson want "$want" '.parameters[] | select(.name == "massShiftW100MeV")
      | ((.value * 100 - $want) | fabs) < 0.5' "$tmp/$name.json" >/dev/null \
    || { echo "FAIL: $name"; jq '.parameters[] | select(.name == "massShiftW100MeV")' "$tmp/$name.json"; exit 1; }
done
"$lepus" fit "$input" --asimov --json "$tmp/asimov.json" 2>/dev/null
jq -e '[.parameters[] | ((.value - .prefit) | fabs) <= 1e-3 * (.error + 1e-9)] | all' "$tmp/asimov.json" >/dev/null \
  || { echo "FAIL: asimov fit does not return the prefit values"; exit 1; }
# Asimov at another parameter point: --set moves the generating point (and the start).
"$lepus" fit "$input" --asimov --set massShiftW100MeV=0.3 --set Wmunu=1.05 --json "$tmp/asimov_set.json" 2>/dev/null
jq -e '[.parameters[] | select(.name == "massShiftW100MeV") | ((.value - 0.3) | fabs) < 1e-6] | all' "$tmp/asimov_set.json" >/dev/null \
  && jq -e '[.parameters[] | select(.name == "Wmunu") | ((.value - 1.05) | fabs) < 1e-6] | all' "$tmp/asimov_set.json" >/dev/null \
  && jq -e '.nll | fabs < 1e-8' "$tmp/asimov_set.json" >/dev/null \
  || { echo "FAIL: asimov at --set point"; jq '.parameters[:2], .nll' "$tmp/asimov_set.json"; exit 1; }
echo "ok"
