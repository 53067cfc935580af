#!/usr/bin/env bash
# scan2d_test.sh LEPUS INPUT TMPDIR: `lepus scan INPUT --no-bbstat --param sig --param2 syst6
# --points 5 --minos`: a 5 x 5 grid around the best fit.
#  * exit 0; stderr has "scan: 25/25 points" and the 2*dnll grid;
#  * JSON: scans[0] with dimension 2, names, 5 values each, a 5 x 5 dnll matrix (rows over x)
#    with ~0 at the centre, larger everywhere else; with --minos the intervals of both parameters;
#  * HDF5 (h5dump, when installed): scans/sig__syst6/dnll is 5 x 5.
set -euo pipefail
lepus=$1 input=$2 tmp=$3
mkdir -p "$tmp"
source "$(dirname "${BASH_SOURCE[0]}")/../shell_lib.sh"
j=$tmp/scan2d.json h5=$tmp/scan2d.h5
"$lepus" scan "$input" --no-bbstat --param sig --param2 syst6 --points 5 --minos --json "$j" \
  -o "$h5" 2>"$tmp/err.txt" || { cat "$tmp/err.txt"; fail "exit code"; }
for word in "scan: 25/25 points" "2*dnll over (sig rows, syst6 columns), 5 x 5 points"; do
  grep -qF "$word" "$tmp/err.txt" || { cat "$tmp/err.txt"; fail "stderr lacks '$word'"; }
done
jq -e '.scans | length == 1 and (.[0] | .dimension == 2 and .name_x == "sig" and .name_y == "syst6"
        and (.values_x | length) == 5 and (.values_y | length) == 5
        and (.dnll | length) == 5 and all(.dnll[]; length == 5))' "$j" >/dev/null \
  || fail "scans: $(jq -c .scans "$j")"
jq -e '.scans[0] | (.dnll[2][2] | fabs) < 1e-6
       and ([.dnll | to_entries[] | .key as $i | .value | to_entries[]
             | select($i != 2 or .key != 2) | .value] | all(. > 1e-3))
       and (.values_x[2] - .best_x | fabs) < 1e-12 and (.values_y[2] - .best_y | fabs) < 1e-12' \
  "$j" >/dev/null || fail "dnll grid: $(jq -c '.scans[0].dnll' "$j")"
jq -e '.intervals | keys == ["sig", "syst6"] and all(.[]; length == 2)' "$j" >/dev/null \
  || fail "intervals: $(jq -c .intervals "$j")"
if command -v h5dump >/dev/null; then
  h5dump -H -d /scans/sig__syst6/dnll "$h5" | grep -q "( 5, 5 )" \
    || fail "scans/sig__syst6/dnll is not 5 x 5: $(h5dump -H -d /scans/sig__syst6/dnll "$h5")"
fi
echo "ok"
