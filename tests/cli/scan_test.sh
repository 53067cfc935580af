#!/usr/bin/env bash
# scan_test.sh LEPUS INPUT TMPDIR: `lepus scan INPUT --no-bbstat --param sig` (default grid: 21
# points over the best fit +- 3 Hessian errors) with --json - and -o.
#  * exit 0; stdout is only the JSON; stderr has the fit report, the progress line
#    "scan: 21/21 points", the scan table and the interval table;
#  * JSON: the fit summary plus scans[0] (dimension 1, 21 values and dnll, dnll ~ 0 at the best
#    fit in the middle, >= 0 everywhere, ~ 4.5 = 3^2/2 at the ends) and intervals.sig at 68.27%
#    and 95% (both ends found, around the best fit, next to the Hessian error);
#  * HDF5 (h5dump, when installed): scans/sig/values and dnll with 21 entries, intervals/.
#  * --poi-positive --range 0 2 --points 5: the grid is exactly 0, 0.5, ..., 2.
set -euo pipefail
lepus=$1 input=$2 tmp=$3
mkdir -p "$tmp"
source "$(dirname "${BASH_SOURCE[0]}")/../shell_lib.sh"
j=$tmp/scan.json h5=$tmp/scan.h5
"$lepus" scan "$input" --no-bbstat --param sig --json - -o "$h5" >"$j" 2>"$tmp/err.txt" \
  || { cat "$tmp/err.txt"; fail "exit code"; }
jq -e . "$j" >/dev/null || fail "stdout is not JSON: $(head -c 500 "$j")"
for word in "fit status: converged" "scan: 21/21 points" "scan of sig (21 points" \
            "profile-likelihood intervals" "68.27%" "95%"; do
  grep -qF "$word" "$tmp/err.txt" || { cat "$tmp/err.txt"; fail "stderr lacks '$word'"; }
done
jq -e '.status == "converged" and (.parameters | length) == 9' "$j" >/dev/null \
  || fail "fit summary: $(jq -c '{status, n: (.parameters | length)}' "$j")"
jq -e '.scans | length == 1 and (.[0] | .dimension == 1 and .name == "sig"
        and (.values | length) == 21 and (.dnll | length) == 21 and (.status | length) == 21)' \
  "$j" >/dev/null || fail "scans: $(jq -c .scans "$j")"
jq -e '.scans[0] | (.dnll[10] | fabs) < 1e-6 and (.values[10] - .best_value | fabs) < 1e-12
       and all(.dnll[]; . > -1e-9)
       and .dnll[0] > 3.5 and .dnll[0] < 5.5 and .dnll[20] > 3.5 and .dnll[20] < 5.5
       and all(.status[]; . == "converged")' "$j" >/dev/null \
  || fail "dnll shape: $(jq -c '.scans[0] | {best_value, values, dnll}' "$j")"
jq -e '.intervals.sig | length == 2
       and (.[0] | (.cl - 0.6827 | fabs) < 1e-4 and (.q - 1 | fabs) < 1e-9)
       and (.[1] | .cl == 0.95)
       and all(.[]; .lo_found and .hi_found and .lo < .value and .value < .hi
               and .err_lo < 0 and .err_hi > 0 and .hessian_error > 0)
       and (.[0] | (.err_hi / .hessian_error - 1 | fabs) < 0.1
                   and (.err_lo / .hessian_error + 1 | fabs) < 0.1)
       and (.[1].hi > .[0].hi and .[1].lo < .[0].lo)' "$j" >/dev/null \
  || fail "intervals: $(jq -c .intervals "$j")"
[[ -s "$h5" ]] || fail "no HDF5 results"

if command -v h5dump >/dev/null; then
  values() { h5dump -m '%.17g' -y -w 0 -d "$2" "$1" | sed -n '/DATA {/,/}/p' | sed '1d;$d' | tr ',' '\n' | tr -d ' ' | sed '/^$/d'; }
  [[ $(values "$h5" /scans/sig/dnll | wc -l) -eq 21 ]] || fail "scans/sig/dnll does not have 21 values"
  [[ $(values "$h5" /scans/sig/values | wc -l) -eq 21 ]] || fail "scans/sig/values does not have 21 values"
  [[ $(values "$h5" /intervals/lo | wc -l) -eq 2 ]] || fail "intervals/lo does not have 2 values"
  [[ $(values "$h5" /parameters/values | wc -l) -eq 9 ]] || fail "parameters/values does not have 9 values"
fi

# A given range with the positive POI parametrisation: the grid starts exactly at mu = 0.
"$lepus" scan "$input" --no-bbstat --poi-positive --param sig --range 0 2 --points 5 \
  --json "$tmp/range.json" 2>"$tmp/err2.txt" || { cat "$tmp/err2.txt"; fail "exit code (--range)"; }
jq -e '.scans[0].values == [0, 0.5, 1, 1.5, 2] and (.scans[0].dnll | length) == 5
       and all(.scans[0].dnll[]; . > 0)' "$tmp/range.json" >/dev/null \
  || fail "--range grid: $(jq -c .scans "$tmp/range.json")"
echo "ok"
