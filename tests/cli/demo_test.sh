#!/usr/bin/env bash
# demo_test.sh LEPUS OUTDIR:
#  1. `lepus demo` (the README's main job: generate -> produce -> fit -> impacts) exits 0, writes
#     the produced fit input, both result files and the HTML report under OUTDIR/chain, prints m_W with the
#     seed-like impact table, and recovers the hidden W-mass offset within 4 standard deviations;
#  2. `lepus demo --analytic` writes the analytic demo input OUTDIR/demo.h5 that the other CLI
#     tests use (ctest fixture) and recovers its -10 MeV shift within 4 standard deviations.
set -euo pipefail
lepus=$1 outdir=$2
rm -rf "$outdir"
mkdir -p "$outdir"

# 1. The chain.
"$lepus" demo --outdir "$outdir/chain" --threads 2 > "$outdir/chain.log"
cat "$outdir/chain.log"
for f in wmass.h5 fit_results.json fit_results.h5 report.html; do
  [[ -s "$outdir/chain/$f" ]] || { echo "FAIL: $outdir/chain/$f missing"; exit 1; }
done
for text in "m_W = " "Source of uncertainty" "Muon momentum scale" "Muon reco. efficiency" \
            "W and Z angular coeffs." "Higher-order EW" "pT(V) modeling" "PDF" \
            "Nonprompt background" "Integrated luminosity" "MC sample size" "Data sample size" \
            "Total uncertainty" "unblinded"; do
  grep -qF -- "$text" "$outdir/chain.log" || { echo "FAIL: '$text' not in the demo output"; exit 1; }
done
jq -e '.status == "converged"' "$outdir/chain/fit_results.json" >/dev/null \
  || { echo "FAIL: status is not converged"; exit 1; }
jq -e '.impacts.grouped_global.massShiftW100MeV | has("muonScale") and has("stat") and has("binByBinStat")' \
  "$outdir/chain/fit_results.json" >/dev/null \
  || { echo "FAIL: no grouped global impacts on massShiftW100MeV in the JSON"; exit 1; }
for id in summary impacts grouped distributions correlations; do
  grep -q "<section id=\"$id\"" "$outdir/chain/report.html" || { echo "FAIL: demo report has no section $id"; exit 1; }
done
pull=$(sed -n 's/.*the fit is off by .* MeV = \([-+0-9.]*\) sigma.*/\1/p' "$outdir/chain.log")
[[ -n "$pull" ]] || { echo "FAIL: no unblinding line"; exit 1; }
awk -v p="$pull" 'BEGIN { exit !(p < 4 && p > -4) }' \
  || { echo "FAIL: hidden offset not recovered (pull $pull)"; exit 1; }

# 2. The analytic input of the other CLI tests.
"$lepus" demo --analytic --outdir "$outdir" --threads 2
for f in demo.h5 fit_results.json fit_results.h5 report.html; do
  [[ -s "$outdir/$f" ]] || { echo "FAIL: $outdir/$f missing"; exit 1; }
done
jq -e '.status == "converged"' "$outdir/fit_results.json" >/dev/null \
  || { echo "FAIL: status is not converged"; jq .status "$outdir/fit_results.json"; exit 1; }
jq -e '.parameters[] | select(.name == "massShiftW100MeV")
       | ((.value * 100 + 10) | fabs) < 4 * .error * 100' "$outdir/fit_results.json" >/dev/null \
  || { echo "FAIL: mass shift not recovered"; jq '.parameters[] | select(.name == "massShiftW100MeV")' "$outdir/fit_results.json"; exit 1; }
echo "ok"
