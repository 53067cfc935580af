#!/usr/bin/env bash
# demo_test.sh LEPUS OUTDIR: `lepus demo` exits 0, writes the input and both result files, and
# recovers the true W-mass shift (-10 MeV) within 4 standard deviations.
set -euo pipefail
lepus=$1 outdir=$2
rm -rf "$outdir"
"$lepus" demo --outdir "$outdir" --threads 2
for f in demo.h5 fit_results.json fit_results.h5; do
  [[ -s "$outdir/$f" ]] || { echo "FAIL: $outdir/$f missing"; exit 1; }
done
jq -e '.status == "converged"' "$outdir/fit_results.json" >/dev/null \
  || { echo "FAIL: status is not converged"; jq .status "$outdir/fit_results.json"; exit 1; }
jq -e '.parameters[] | select(.name == "massShiftW100MeV")
       | ((.value * 100 + 10) | fabs) < 4 * .error * 100' "$outdir/fit_results.json" >/dev/null \
  || { echo "FAIL: mass shift not recovered"; jq '.parameters[] | select(.name == "massShiftW100MeV")' "$outdir/fit_results.json"; exit 1; }
echo "ok"
