#!/usr/bin/env bash
# produce_inputs_test.sh LEPUS WORKDIR: `lepus produce wmass|wlike|helicity|dilepton` refuse a
# calibration whose fit failed ("status" of schema version 3) and an all-zero one (what a failed
# fit of an older lepus wrote, no status key) before any work: exit code 1 and a message naming
# the file and the field (docs/calibration.md, "Fit status"). `lepus calibrate zclosure` refuses
# them as its input too.
set -euo pipefail
lepus=$1 work=$2
rm -rf "$work"
mkdir -p "$work"

source "$(dirname "${BASH_SOURCE[0]}")/../shell_lib.sh"

# Two eta bins; covariance 6 x 6.
zero_row='[0, 0, 0, 0, 0, 0]'
cat >"$work/failed.json" <<JSON
{"schema": "lepus-muon-calibration", "schema_version": 3,
 "status": "not_converged", "status_message": "Ceres did not converge: Maximum number of iterations reached.",
 "eta_edges": [-2.4, 0, 2.4], "A": [1e-4, 2e-4], "e": [0, 0], "M": [1e-6, 0],
 "covariance": [[1e-8, 0, 0, 0, 0, 0], [0, 1e-6, 0, 0, 0, 0], [0, 0, 1e-12, 0, 0, 0],
                [0, 0, 0, 1e-8, 0, 0], [0, 0, 0, 0, 1e-6, 0], [0, 0, 0, 0, 0, 1e-12]]}
JSON
cat >"$work/zero.json" <<JSON
{"schema": "lepus-muon-calibration", "schema_version": 1,
 "eta_edges": [-2.4, 0, 2.4], "A": [0, 0], "e": [0, 0], "M": [0, 0],
 "covariance": [$zero_row, $zero_row, $zero_row, $zero_row, $zero_row, $zero_row]}
JSON

for cal in failed zero; do
  if [[ $cal == failed ]]; then
    regex="$work/failed.json: status is \"not_converged\" \(Ceres did not converge: Maximum number of iterations reached.\), but must be \"converged\""
  else
    regex="$work/zero.json: covariance is all zero on its diagonal \(6 parameters\), but must have at least one positive variance"
  fi
  for producer in wmass wlike helicity dilepton; do
    extra=''
    [[ $producer == wlike || $producer == helicity ]] && extra="\"producer\": \"$producer\", "
    echo "{\"lepus_config_version\": 1, ${extra}\"preset\": \"light\", \"systematics\": {\"muon_scale\": {\"calibration\": \"$work/$cal.json\", \"regions\": 0}}}" \
      >"$work/$producer-$cal.cfg.json"
    expect_error "$regex" produce "$producer" --config "$work/$producer-$cal.cfg.json" -o "$work/out-$producer.h5"
    [[ ! -e "$work/out-$producer.h5" ]] || fail "produce $producer wrote an output with the $cal calibration"
  done
  expect_error "$regex" calibrate zclosure -c "$work/$cal.json" --light -o "$work/z.json"
done
# End to end: a J/psi calibration that cannot fit (every mass bin below --min-events) exits 2,
# writes the file marked "not_converged", and the producer refuses it.
set +e
"$lepus" calibrate jpsi --light -n 20000 --min-events 1000000000 --threads 1 -q -o "$work/jpsi_failed.json" \
  2>"$work/calibrate.log"
code=$?
set -e
[[ $code -eq 2 ]] || { cat "$work/calibrate.log"; fail "calibrate jpsi exit code $code, expected 2"; }
grep -q '"status": "not_converged"' "$work/jpsi_failed.json" || fail "no status in the failed calibration"
grep -q '"schema_version": 3' "$work/jpsi_failed.json" || fail "a failed calibration must be schema version 3"
grep -q 'is marked "status": "not_converged"' "$work/calibrate.log" || { cat "$work/calibrate.log"; fail "calibrate does not say the file is marked"; }
echo "{\"lepus_config_version\": 1, \"preset\": \"light\", \"systematics\": {\"muon_scale\": {\"calibration\": \"$work/jpsi_failed.json\"}}}" \
  >"$work/jpsi-failed.cfg.json"
expect_error "$work/jpsi_failed.json: status is \"not_converged\" \(no mass bin to fit\), but must be \"converged\"" \
  produce wmass --config "$work/jpsi-failed.cfg.json" -o "$work/out-jpsi.h5"
echo ok
