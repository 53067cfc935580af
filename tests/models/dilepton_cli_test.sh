#!/usr/bin/env bash
# dilepton_cli_test.sh LEPUS WORKDIR: `lepus produce dilepton` end to end on a small sample (the
# fit input has the channel, groups, NOI scale and pseudo-data; identical at 1 and 2 threads;
# `lepus fit --impacts` recovers the hidden m_Z shift of the generated data and reports its stat
# part; pseudo-data +30 MeV is recovered), --print-config round trip, and clear errors (exit
# code 1) for inconsistent options and bad configuration files.
set -euo pipefail
lepus=$1 work=$2
rm -rf "$work"
mkdir -p "$work"

source "$(dirname "${BASH_SOURCE[0]}")/../shell_lib.sh"

cat >"$work/small.json" <<'JSON'
{"lepus_config_version": 1, "producer": "dilepton", "preset": "light",
 "simulation": {"events": 500000}, "luminosity_pb": 40, "chunk_events": 16384}
JSON

"$lepus" produce dilepton --config "$work/small.json" --threads 1 --data-truth-mz-shift -25 \
  -o "$work/t1.h5" 2>"$work/t1.log"
"$lepus" produce dilepton --config "$work/small.json" --threads 2 --data-truth-mz-shift -25 \
  -o "$work/t2.h5" 2>"$work/t2.log"
grep -q "produce \[" "$work/t2.log" || fail "no progress bar"
grep -q "events read: 500000 simulation" "$work/t2.log" || { cat "$work/t2.log"; fail "no summary"; }
grep -Eq "groups: massZ 1, widthZ 1, .*muonScale 18, muonEfficiency 25" "$work/t2.log" \
  || { cat "$work/t2.log"; fail "groups"; }
grep -q "top: no selected events" "$work/t2.log" || fail "no note on the empty top template"
for d in hdata_obs hnorm; do
  cmp -s <(h5dump -d $d "$work/t1.h5" | sed 1d) <(h5dump -d $d "$work/t2.h5" | sed 1d) \
    || fail "$d differs between 1 and 2 threads"
done
"$lepus" inspect "$work/t2.h5" --json >"$work/inspect.json"
jq -e '.channels[0].name == "dilepton" and .channels[0].bins == 288' "$work/inspect.json" >/dev/null \
  || { jq '.channels' "$work/inspect.json"; fail "channel dilepton with 288 bins expected"; }

# The hidden shift of the generated data, with its statistical part.
"$lepus" fit "$work/t2.h5" --impacts --json "$work/fit.json" 2>"$work/fit.log"
grep -q "impacts on massShiftZ100MeV (MeV)" "$work/fit.log" || { cat "$work/fit.log"; fail "no impact table"; }
jq -e '.parameters[] | select(.name == "massShiftZ100MeV")
       | .unit == "MeV" and .scale == 100 and ((.value_physical + 25) | fabs) < 3 * .error_physical' \
  "$work/fit.json" >/dev/null \
  || { jq '.parameters[] | select(.name == "massShiftZ100MeV")' "$work/fit.json"; fail "m_Z shift -25 MeV not recovered"; }
jq -e '.impacts.grouped_nominal.massShiftZ100MeV | .stat > 1 and .muonScale > 1' "$work/fit.json" >/dev/null \
  || { jq '.impacts.grouped_nominal.massShiftZ100MeV' "$work/fit.json"; fail "stat / muonScale impacts"; }

# Pseudo-data with a +30 MeV shift.
"$lepus" fit "$work/t2.h5" --pseudodata mass_shift_p30MeV --json "$work/pd.json" 2>/dev/null
jq -e '.parameters[] | select(.name == "massShiftZ100MeV") | ((.value_physical - 30) | fabs) < 1' \
  "$work/pd.json" >/dev/null \
  || { jq '.parameters[] | select(.name == "massShiftZ100MeV")' "$work/pd.json"; fail "pseudo-data +30 MeV not recovered"; }

# Event files instead of the generator (simulation and data).
"$lepus" generate --process zmumu,ztautau -n 20000 --seed 5 --min-muons 2 -o "$work/zsim.h5" 2>/dev/null
"$lepus" generate --process zmumu,ztautau -n 20000 --data --seed 6 --min-muons 2 -o "$work/zdata.h5" 2>/dev/null
"$lepus" produce dilepton --events "$work/zsim.h5" --data-events "$work/zdata.h5" -o "$work/files.h5" \
  2>"$work/files.log"
grep -Eq "events read: [0-9]+ simulation, [0-9]+ data" "$work/files.log" || { cat "$work/files.log"; fail "files summary"; }
grep -q "1 event file(s); data 1 event file(s)" "$work/files.log" || { cat "$work/files.log"; fail "files header"; }
"$lepus" inspect "$work/files.h5" --json | jq -e '.channels[0].name == "dilepton"' >/dev/null || fail "files input"

# --print-config prints a configuration that reads back.
"$lepus" produce dilepton --full --print-config >"$work/full.json"
jq -e '.preset == "full" and .producer == "dilepton" and .lepus_config_version == 1 and
       (.binning.mass_edges | length) == 59' "$work/full.json" >/dev/null || fail "print-config"
"$lepus" produce dilepton --config "$work/full.json" --print-config >"$work/full2.json"
cmp -s "$work/full.json" "$work/full2.json" || fail "print-config does not round-trip"

# Inconsistent options and bad configurations.
expect_error "lepus: error: --events and --generate exclude each other" \
  produce dilepton --events a.h5 --generate 10 -o "$work/x.h5"
expect_error "lepus: error: --data-truth-mz-shift applies to generated data only" \
  produce dilepton --data-events d.h5 --data-truth-mz-shift 20 -o "$work/x.h5"
expect_error "lepus: error: --light: the preset comes from the 'preset' key of --config" \
  produce dilepton --config "$work/small.json" --light -o "$work/x.h5"
expect_error "lepus: error: produce dilepton: -o/--output FILE is required" produce dilepton
expect_error "lepus: error: .*/no_such_dir/x\.h5" produce dilepton --generate 1000 -o "$work/no_such_dir/x.h5"
"$lepus" generate --process zmumu -n 2000 --seed 3 -o "$work/sim_events.h5" 2>/dev/null
expect_error "sim_events\.h5: the file holds simulation events \(attribute 'sample'\), but was given as data" \
  produce dilepton --data-events "$work/sim_events.h5" -o "$work/x.h5"
echo '{"lepus_config_version": 1, "data": {"mw_shift_mev": 10}}' >"$work/bad_key.json"
expect_error "bad_key\.json: unknown key 'data\.mw_shift_mev' \(did you mean 'data\.mz_shift_mev'\?\)" \
  produce dilepton --config "$work/bad_key.json" -o "$work/x.h5"
echo '{"lepus_config_version": 1, "binning": {"mass_edges": [60, 91, 91]}}' >"$work/bad_edges.json"
expect_error "bad_edges\.json: binning\.mass_edges\[2\] is 91, but must be > binning\.mass_edges\[1\] \(91\)" \
  produce dilepton --config "$work/bad_edges.json" -o "$work/x.h5"
echo '{"lepus_config_version": 1, "luminosity_pb": "200"}' >"$work/bad_type.json"
expect_error "bad_type\.json: luminosity_pb is \"200\" \(string\), but must be a number" \
  produce dilepton --config "$work/bad_type.json" -o "$work/x.h5"
echo '{"lepus_config_version": 1, "producer": "wmass"}' >"$work/bad_producer.json"
expect_error "bad_producer\.json: producer is \"wmass\" \(string\), but must be \"dilepton\"" \
  produce dilepton --config "$work/bad_producer.json" -o "$work/x.h5"
echo '{"lepus_config_version": 3}' >"$work/bad_version.json"
expect_error "bad_version\.json: lepus_config_version is 3, but this lepus reads version 1" \
  produce dilepton --config "$work/bad_version.json" -o "$work/x.h5"
expect_error "lepus: error: .*no_config\.json: cannot open" \
  produce dilepton --config "$work/no_config.json" -o "$work/x.h5"
echo "ok"
