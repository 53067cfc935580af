#!/usr/bin/env bash
# all_pseudodata_test.sh LEPUS DEMO_INPUT TMPDIR: `lepus fit --all-pseudodata` fits the data and
# the three un-fluctuated pseudo-data sets of the demo input in one call: exit 0, a table row per
# set on stderr, JSON pseudodata_fits with one converged entry per set whose W-mass shift is the
# set's (within 0.5 MeV) and equals a separate `--pseudodata` fit of the same set.
set -euo pipefail
lepus=$1 input=$2 tmp=$3
mkdir -p "$tmp"
source "$(dirname "${BASH_SOURCE[0]}")/../shell_lib.sh"
j=$tmp/all.json
"$lepus" fit "$input" --all-pseudodata --json "$j" 2>"$tmp/err.txt" || { cat "$tmp/err.txt"; fail "exit code"; }
grep -q "fits of the 3 pseudo-data sets" "$tmp/err.txt" || { cat "$tmp/err.txt"; fail "no table"; }
jq -e '.data == "observed" and (.pseudodata_fits | length == 3)
    and ([.pseudodata_fits[] | .status == "converged" and (.parameters | length == 2)] | all)' "$j" \
  >/dev/null || fail "pseudodata_fits: $(jq -c .pseudodata_fits "$j")"
for pair in m10:-10 0:0 p10:10; do
  name=mass_shift_${pair%%:*}MeV want=${pair##*:}
  grep -qE "^  $name +converged" "$tmp/err.txt" || fail "no table row for $name"
  "$lepus" fit "$input" --pseudodata "$name" --json "$tmp/$name.json" 2>/dev/null
  single=$(jq '.parameters[] | select(.name == "massShiftW100MeV") | .value_physical' "$tmp/$name.json")
  jq -e --arg n "$name" --argjson want "$want" --argjson single "$single" '.pseudodata_fits[]
      | select(.name == $n) | .parameters[] | select(.name == "massShiftW100MeV")
      | .unit == "MeV" and ((.value_physical - $want) | fabs) < 0.5
        and ((.value_physical - $single) | fabs) < 1e-6' "$j" >/dev/null \
    || fail "$name: $(jq -c --arg n "$name" '.pseudodata_fits[] | select(.name == $n)' "$j") vs $single"
done
echo "ok"
