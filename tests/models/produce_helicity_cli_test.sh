#!/usr/bin/env bash
# produce_helicity_cli_test.sh LEPUS WORKDIR: `lepus produce helicity` end to end on a small
# sample (the fit input has the split processes, the masked channel of generator-level cross
# sections and the helicity pseudo-data set; --coefficients returns the nominal A_i on Asimov data
# and the modified ones on that set), --print-config round trip, and clear errors (exit code 1).
set -euo pipefail
lepus=$1 work=$2
rm -rf "$work"
mkdir -p "$work"

source "$(dirname "${BASH_SOURCE[0]}")/../shell_lib.sh"

cat >"$work/small.json" <<'JSON'
{"lepus_config_version": 1, "producer": "helicity", "preset": "light",
 "binning": {"eta_bins": 24, "pt_bins": 15},
 "simulation": {"events": 600000}, "luminosity_pb": 20, "chunk_events": 32768,
 "systematics": {"nonprompt": {"enabled": false}},
 "helicity": {"free": true}}
JSON

"$lepus" produce helicity --config "$work/small.json" -o "$work/hel.h5" 2>"$work/hel.log"
grep -q "helicity: Wmunu split into 72 processes" "$work/hel.log" || { cat "$work/hel.log"; fail "no split summary"; }
"$lepus" inspect "$work/hel.h5" --json >"$work/inspect.json"
jq -e '[.channels[] | {name, bins, masked}] ==
       [{"name": "wmass", "bins": 720, "masked": false}, {"name": "helicity_xsec", "bins": 72, "masked": true}]' \
  "$work/inspect.json" >/dev/null || { jq '.channels' "$work/inspect.json"; fail "channels"; }

# Asimov: the nominal A_i exactly; the helicity pseudo-data set: A0 x 1.2, A4 x 0.9.
"$lepus" produce helicity --coefficients "$work/hel.h5" --asimov --json "$work/asimov.json" 2>"$work/asimov.log"
jq -e 'length == 12 and all(.[]; .components.A4.A_error > 0 and
       ((.components.A4.A - .components.A4.A_prefit) | fabs) < 1e-6 and
       ((.components.UL.sigma_pb / .components.UL.sigma_prefit_pb - 1) | fabs) < 1e-6)' \
  "$work/asimov.json" >/dev/null || { head -c 2000 "$work/asimov.json"; fail "Asimov closure"; }
"$lepus" produce helicity --coefficients "$work/hel.h5" --pseudodata helicity_A0x1p2_A4x0p9 \
  >"$work/mod.json" 2>/dev/null
jq -e 'all(.[]; ((.components.A0.A / .components.A0.A_prefit - 1.2) | fabs) < 1e-3 and
               ((.components.A4.A / .components.A4.A_prefit - 0.9) | fabs) < 1e-3)' \
  "$work/mod.json" >/dev/null || { head -c 2000 "$work/mod.json"; fail "modified A_i not recovered"; }

# --print-config prints a configuration that reads back; the flags override it.
"$lepus" produce helicity --full --print-config >"$work/full.json"
jq -e '.producer == "helicity" and .preset == "full" and (.helicity.pt_edges | length) == 9 and
       (.helicity.y_edges | length) == 8' "$work/full.json" >/dev/null || fail "print-config"
"$lepus" produce helicity --config "$work/full.json" --print-config >"$work/full2.json"
cmp -s "$work/full.json" "$work/full2.json" || fail "print-config does not round-trip"
"$lepus" produce helicity --light --prior-width 0.2 --print-config | jq -e '.helicity.prior_width == 0.2 and .helicity.free == false' >/dev/null \
  || fail "--prior-width"

# Errors.
expect_error "lepus: error: --free and --prior-width exclude each other" \
  produce helicity --free --prior-width 0.3 -o "$work/x.h5"
expect_error "the configuration is for 'produce helicity' \(key 'producer'\), but was given to 'produce wmass'" \
  produce wmass --config "$work/small.json" -o "$work/x.h5"
echo '{"lepus_config_version": 1, "producer": "helicity", "helicity": {"y_edges": [0, 2, 1]}}' >"$work/bad.json"
expect_error "bad\.json: helicity\.y_edges is \[0, 2, 1\], but must be strictly increasing from 0" \
  produce helicity --config "$work/bad.json" -o "$work/x.h5"
echo '{"lepus_config_version": 1, "producer": "helicity", "helicity": {"prior": 1}}' >"$work/bad_key.json"
expect_error "bad_key\.json: unknown key 'helicity\.prior'" \
  produce helicity --config "$work/bad_key.json" -o "$work/x.h5"
echo "ok"
