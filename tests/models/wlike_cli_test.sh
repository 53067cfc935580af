#!/usr/bin/env bash
# wlike_cli_test.sh LEPUS WORKDIR: `lepus produce wlike` end to end on a small sample (channel
# wlike with 3264 bins, the Z-mass NOI, the fit of generated data for both parities), split masses
# (`--mass-split charge`: the separate masses with `lepus fit --combine` equal the difference
# parameter of `--mass-split-mode difference`), the same output at 1 and 2 threads, the mass
# centre (--mass-center) and the attenuation line of the summary, and clear errors (exit code 1).
set -euo pipefail
lepus=$1 work=$2
rm -rf "$work"
mkdir -p "$work"

source "$(dirname "${BASH_SOURCE[0]}")/../shell_lib.sh"
noi() {  # noi FIT.json NAME: "value error" in MeV
  jq -r --arg n "$2" '.parameters[] | select(.name == $n) | "\(.value_physical) \(.error_physical)"' "$1"
}

cat >"$work/small.json" <<'JSON'
{"lepus_config_version": 1, "producer": "wlike", "preset": "light",
 "binning": {"eta_bins": 24}, "simulation": {"events": 1000000}, "luminosity_pb": 200,
 "chunk_events": 32768,
 "data": {"mz_shift_mev": 40}}
JSON

# Both parities: the kept muon is the mu- of even events (default) or the mu+ (--flip-parity).
"$lepus" produce wlike --config "$work/small.json" -o "$work/even.h5" 2>"$work/even.log"
"$lepus" produce wlike --config "$work/small.json" --flip-parity -o "$work/odd.h5" 2>"$work/odd.log"
grep -q "W-like: mT > 45 GeV, two isolated muons, 60 < mll < 120 GeV" "$work/even.log" || { cat "$work/even.log"; fail "no W-like summary"; }
"$lepus" inspect "$work/even.h5" --json >"$work/inspect.json"
jq -e '.channels[0].name == "wlike" and .channels[0].bins == 1632' "$work/inspect.json" >/dev/null \
  || fail "channel wlike with 24 x 34 x 2 bins expected"
for p in even odd; do
  "$lepus" fit "$work/$p.h5" --json "$work/$p.json" 2>/dev/null
  read -r v e < <(noi "$work/$p.json" massShiftZ100MeV)
  echo "m_Z - m_Z(sim), truth +40 MeV, parity $p: $v +- $e MeV"
  awk -v v="$v" -v e="$e" 'BEGIN { exit !((v - 40) ^ 2 < 4 * e * e) }' \
    || fail "parity $p: $v +- $e MeV is not within 2 sigma of +40 MeV"
done
cmp -s <(noi "$work/even.json" massShiftZ100MeV) <(noi "$work/odd.json" massShiftZ100MeV) \
  && fail "both parities gave the same result"

# Split masses: separate + --combine against the difference parameter (same events).
"$lepus" produce wlike --config "$work/small.json" --mass-split charge -o "$work/sep.h5" 2>/dev/null
"$lepus" produce wlike --config "$work/small.json" --mass-split charge --mass-split-mode difference \
  -o "$work/dif.h5" 2>/dev/null
"$lepus" fit "$work/sep.h5" --combine 'diff=massShiftZ100MeV_plus - massShiftZ100MeV_minus' \
  --json "$work/sep.json" 2>/dev/null
"$lepus" fit "$work/dif.h5" --json "$work/dif.json" 2>/dev/null
read -r cv ce < <(jq -r '.combinations[] | select(.name == "diff") | "\(.value) \(.error)"' "$work/sep.json")
read -r dv de < <(jq -r '.parameters[] | select(.name == "massDiffZ100MeV_charge") | "\(.value) \(.error)"' "$work/dif.json")
echo "m(+) - m(-): combination $cv +- $ce, difference parameter $dv +- $de (units of 100 MeV)"
awk -v a="$cv" -v b="$dv" -v ea="$ce" -v eb="$de" \
  'BEGIN { d = a - b; de = ea - eb; exit !(d * d < 1e-4 * eb * eb && de * de < 1e-4 * eb * eb) }' \
  || fail "combination and difference parameter disagree"

# The same fit input at 1 and 2 threads.
cat >"$work/tiny.json" <<'JSON'
{"lepus_config_version": 1, "producer": "wlike", "binning": {"eta_bins": 24},
 "simulation": {"events": 300000}, "luminosity_pb": 50, "chunk_events": 16384}
JSON
"$lepus" produce wlike --config "$work/tiny.json" --threads 1 -o "$work/t1.h5" 2>/dev/null
"$lepus" produce wlike --config "$work/tiny.json" --threads 2 -o "$work/t2.h5" 2>/dev/null
for d in hlogk hnorm hdata_obs hsumw2; do
  cmp -s <(h5dump -d $d "$work/t1.h5" | sed 1d) <(h5dump -d $d "$work/t2.h5" | sed 1d) \
    || fail "$d differs between 1 and 2 threads"
done

# --mass-center: the simulation's m_Z gives the same fit input (no producer metadata); another
# centre is recorded in the `lepus_producer_json` attribute and its +30 MeV set is fitted as +30
# relative to that centre; the summary reports the attenuation.
"$lepus" produce wlike --config "$work/tiny.json" --threads 2 --mass-center 91187.6 \
  -o "$work/c0.h5" 2>"$work/c0.log"
h5diff "$work/t2.h5" "$work/c0.h5" >/dev/null || fail "--mass-center at the simulation's m_Z changed the input"
grep -Eq "^attenuation massShiftZ100MeV: expected slope of the fitted shift 1/\(1\+r\) = 0\.[0-9]+, r = [0-9.]+" \
  "$work/c0.log" || { cat "$work/c0.log"; fail "no attenuation in the summary"; }
"$lepus" produce wlike --config "$work/tiny.json" --threads 2 --mass-center 91217.6 \
  -o "$work/c30.h5" 2>"$work/c30.log"
grep -q "mass templates centred at 91217.600 MeV (simulation 91187.600 MeV)" "$work/c30.log" \
  || { cat "$work/c30.log"; fail "no centre in the summary"; }
h5dump -a lepus_producer_json "$work/c30.h5" | grep -q '"mass_center_mev":91217.6' \
  || { h5dump -a lepus_producer_json "$work/c30.h5"; fail "no centre in the metadata"; }
if h5dump -a lepus_producer_json "$work/t2.h5" >/dev/null 2>&1; then fail "metadata in a default input"; fi
"$lepus" fit "$work/c30.h5" --pseudodata mass_shift_p30MeV --json "$work/c30fit.json" 2>/dev/null
read -r v _ < <(noi "$work/c30fit.json" massShiftZ100MeV)
awk -v v="$v" 'BEGIN { exit !(v > 29 && v < 31) }' || fail "recentred +30 MeV set fitted as $v"
expect_error "lepus: error: --mass-center is 79000 MeV, but must be the Z mass in MeV within 1000 MeV of the simulation's \(91187.6 MeV\)" \
  produce wlike --mass-center 79000 -o "$work/x.h5"
expect_error "lepus: error: --mass-center is -1 MeV, but must be the W mass" \
  produce wmass --mass-center -1 -o "$work/x.h5"
expect_error "lepus: error: --mass-center is 'x', but must be a finite number" \
  produce wmass --mass-center x -o "$work/x.h5"
echo '{"lepus_config_version": 1, "producer": "wlike", "systematics": {"mass": {"center_mev": 95000}}}' >"$work/c.json"
expect_error "c\.json: mass\.center_mev is 95000, but must be within 1000 MeV of the simulation.s m_Z \(91187\.6 MeV\)" \
  produce wlike --config "$work/c.json" -o "$work/x.h5"

# Errors.
expect_error "lepus: error: --mass-split is 'charges', but must be none, charge, eta_sign" \
  produce wlike --mass-split charges -o "$work/x.h5"
expect_error "lepus: error: --mass-split-mode is 'diff', but must be separate or difference" \
  produce wmass --mass-split charge --mass-split-mode diff -o "$work/x.h5"
expect_error "lepus: error: produce wmass: mass_split_mode is 'difference', but must be 'separate' for mass_split 'abs_eta:0,1.2,2.4'" \
  produce wmass --mass-split abs_eta:0,1.2,2.4 --mass-split-mode difference -o "$work/x.h5"
expect_error "lepus: error: --data-truth-mz-shift applies to generated data only" \
  produce wlike --data-events d.h5 --data-truth-mz-shift 20 -o "$work/x.h5"
echo '{"lepus_config_version": 1, "producer": "wmass"}' >"$work/wmass.json"
expect_error "wmass\.json: producer is \"wmass\" \(string\), but must be \"wlike\"" \
  produce wlike --config "$work/wmass.json" -o "$work/x.h5"
expect_error "lepus: error: produce wlike: -o/--output FILE is required" produce wlike
"$lepus" produce wlike --full --print-config >"$work/full.json"
jq -e '.producer == "wlike" and .preset == "full" and .binning.pt_bins == 34' "$work/full.json" >/dev/null \
  || fail "print-config"
"$lepus" produce wlike --config "$work/full.json" --print-config | cmp -s - "$work/full.json" \
  || fail "print-config does not round-trip"
echo "ok"
