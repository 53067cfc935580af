#!/usr/bin/env bash
# calibrate_closure_test.sh LEPUS TMPDIR: the calibration pieces end to end.
#   1. `lepus generate --process jpsi` files read by `calibrate jpsi --events --data-events` give
#      the calibration of the same events generated (identical JSON numbers);
#   2. `calibrate zclosure` on it: converged, consistent with zero, writes closure (12 bins) and
#      keeps the central values, covariance and resolution uncertainties;
#   3. a deliberately wrong calibration (A of bin 3 + 1e-2, ~15 sigma of this light J/psi
#      calibration) is detected (NOT consistent, the bin's residual A near -1e-2), and event
#      files given in the wrong role or as the wrong process are rejected;
#   4. the W-mass producer with the closure-filled calibration (`calibration_file`, regions 0):
#      `lepus fit --impacts --group calibStat=muonScaleStat.* --group calibClosure=... --group
#      calibClosureGlobal=...` reports the J/psi statistical part, the per-bin closure and the
#      global (LEP) closure term separately (JSON and table).
set -euo pipefail
lepus=$1 tmp=$2
mkdir -p "$tmp"
cd "$tmp"
source "$(dirname "${BASH_SOURCE[0]}")/../shell_lib.sh"

# 1. J/psi event files = generated events.
"$lepus" generate --process jpsi --data -n 300000 --seed 4 --threads 2 -o jpsi_data.h5 2> gen.log
"$lepus" generate --process jpsi -n 600000 --seed 4 --threads 2 -o jpsi_sim.h5 2>> gen.log
grep -q "J/psi events of 300000 generated" gen.log || { cat gen.log; fail "generate jpsi summary"; }
"$lepus" calibrate jpsi --light --events jpsi_sim.h5 --data-events jpsi_data.h5 --truth biased \
  --min-events 30 --threads 2 -q -o cal_files.json 2> files.log
"$lepus" calibrate jpsi --light -n 300000 --seed 4 --truth biased --min-events 30 --threads 2 -q \
  -o cal_gen.json 2> gen_cal.log
grep -q "read from files" files.log || { cat files.log; fail "no 'read from files'"; }
grep -q "resolution: width fit" files.log || { cat files.log; fail "no resolution summary"; }
for key in A e M covariance resolution_uncertainty; do
  [ "$(jq -c ".$key" cal_files.json)" = "$(jq -c ".$key" cal_gen.json)" ] ||
    fail ".$key differs between the calibration from files and from generation"
done
[ "$(jq '.resolution_uncertainty | length' cal_files.json)" = 12 ] || fail "12 resolution bins"

# 2. Z closure of the calibration.
"$lepus" calibrate zclosure -c cal_files.json --light -n 500000 --seed 9 --truth biased \
  --threads 2 -q -o cal_z.json 2> z.log
for pattern in "Z closure: converged" "residual fit:" "Ceres Solver Report" \
               "residual A (Z stat, calib)" "closure: the residuals are consistent with zero" \
               "wrote cal_z.json"; do
  grep -q "$pattern" z.log || { cat z.log; fail "no '$pattern' in the zclosure report"; }
done
[ "$(jq '.closure.A | length' cal_z.json)" = 12 ] || fail "closure.A must have 12 bins"
[ "$(jq '[.closure.e[] | select(. != 0)] | length' cal_z.json)" = 0 ] || fail "closure.e must be 0"
for key in A e M covariance resolution_uncertainty eta_edges; do
  [ "$(jq -c ".$key" cal_z.json)" = "$(jq -c ".$key" cal_files.json)" ] ||
    fail ".$key changed by the closure"
done
jq -e '.description | contains("Z closure")' cal_z.json > /dev/null || fail "description"
[ "$(jq '.schema_version' cal_z.json)" = 2 ] || fail "schema_version 2 with closure_global"
jq -e '.closure_global.A > 2.2e-5 and .closure_global.A < 2.4e-5' cal_z.json > /dev/null ||
  fail "closure_global.A = 2.1 MeV / m_Z"

# 3. A wrong calibration is detected.
jq '.A[3] += 0.01' cal_files.json > cal_wrong.json
set +e
"$lepus" calibrate zclosure -c cal_wrong.json --light -n 500000 --seed 9 --truth biased \
  --threads 2 -q -o cal_wrong_z.json 2> wrong.log
rc=$?
set -e
[ $rc = 0 ] || { cat wrong.log; fail "zclosure of a wrong calibration exited with $rc"; }
grep -q "closure: the residuals are NOT consistent with zero" wrong.log ||
  { cat wrong.log; fail "the wrong calibration was not detected"; }
r3=$(grep -E '^ +3 \[' wrong.log | sed 's/.*\] *//' | awk '{print $1}')
awk -v r="$r3" 'BEGIN { if (!(r < -0.0065 && r > -0.0135)) exit 1 }' ||
  { grep "^ *3 " wrong.log; fail "bin 3 residual A should be near -1e-2"; }
"$(dirname "$0")/expect_exit.sh" 1 "jpsi_data.h5: attribute 'process' is 'jpsi', but must be 'zmumu'" -- \
  "$lepus" calibrate zclosure -c cal_files.json --events jpsi_sim.h5 --data-events jpsi_data.h5 \
  -o bad.json > /dev/null || fail "J/psi files accepted as Z events"
"$(dirname "$0")/expect_exit.sh" 1 "jpsi_sim.h5: the file holds simulation events .*given as data \(--data-events\)" -- \
  "$lepus" calibrate jpsi --light --events jpsi_data.h5 --data-events jpsi_sim.h5 -o bad.json \
  > /dev/null || fail "a simulation file accepted as data"

# 4. The W fit with the calibration: J/psi stat and closure impacts reported separately.
cat > cfg.json <<EOF
{"lepus_config_version": 1, "preset": "light",
 "systematics": {"muon_scale": {"calibration": "cal_z.json", "regions": 0}}}
EOF
"$lepus" produce wmass --config cfg.json --generate 600000 --luminosity 30 --threads 2 \
  -o w.h5 2> produce.log || { cat produce.log; fail "produce wmass"; }
# The resolution nuisances belong to the momentum-scale group too (as in the CMS W-mass impact table) and
# have their own group muonResolution.
grep -q "muonScale 61, muonResolution 12," produce.log ||
  { grep groups produce.log; fail "36 stat + 12 closure + 1 global closure + 12 resolution muonScale nuisances expected"; }
"$lepus" fit w.h5 --impacts --group 'calibStat=muonScaleStat.*' \
  --group 'calibClosure=muonScaleClosure_eta.*' --group 'calibClosureGlobal=muonScaleClosureGlobal' \
  --threads 2 --json fit.json > fit.out 2> fit.log ||
  { cat fit.log; fail "fit"; }
for g in calibStat calibClosure calibClosureGlobal muonScale; do
  grep -Eq "^ +$g +[0-9]+\.[0-9]+" fit.log fit.out ||
    { cat fit.log fit.out | tail -40; fail "no impact row $g"; }
done
if jq -e '.impacts' fit.json > /dev/null 2>&1; then
  jq -c '.impacts' fit.json | grep -q calibClosure || fail "calibClosure not in the JSON impacts"
fi
echo ok
