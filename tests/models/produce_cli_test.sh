#!/usr/bin/env bash
# produce_cli_test.sh LEPUS WORKDIR: `lepus produce wmass` end to end on a small sample (the fit
# input is valid, has the expected channel, groups, NOI scale and pseudo-data, and fits), the
# same output at 1 and 2 threads, --print-config round trip, and clear errors (exit code 1) for
# inconsistent options and bad configuration files.
set -euo pipefail
lepus=$1 work=$2
rm -rf "$work"
mkdir -p "$work"

source "$(dirname "${BASH_SOURCE[0]}")/../shell_lib.sh"

cat >"$work/small.json" <<'JSON'
{"lepus_config_version": 1, "preset": "light", "simulation": {"events": 600000},
 "luminosity_pb": 20, "chunk_events": 16384}
JSON

# A small production at 1 and 2 threads: identical files apart from nothing (the writer is
# deterministic), a valid fit input.
"$lepus" produce wmass --config "$work/small.json" --threads 1 -o "$work/t1.h5" 2>"$work/t1.log"
"$lepus" produce wmass --config "$work/small.json" --threads 2 -o "$work/t2.h5" 2>"$work/t2.log"
grep -q "produce \[" "$work/t2.log" || fail "no progress bar"
grep -q "events read: 600000 simulation" "$work/t2.log" || fail "no summary"
grep -q "78 nuisances" "$work/t2.log" || { cat "$work/t2.log"; fail "not 78 nuisances"; }
cmp -s <(h5dump -d hlogk_sparse/values "$work/t1.h5" | sed 1d) <(h5dump -d hlogk_sparse/values "$work/t2.h5" | sed 1d) \
  || fail "logk differs between 1 and 2 threads"
cmp -s <(h5dump -d hdata_obs "$work/t1.h5" | sed 1d) <(h5dump -d hdata_obs "$work/t2.h5" | sed 1d) \
  || fail "data differ between 1 and 2 threads"
"$lepus" inspect "$work/t2.h5" --json >"$work/inspect.json"
jq -e '.channels[0].name == "wmass" and .channels[0].bins == 2880' "$work/inspect.json" >/dev/null \
  || fail "channel wmass with 2880 bins expected"
"$lepus" fit "$work/t2.h5" --pseudodata mass_shift_p30MeV --json "$work/fit.json" 2>/dev/null
jq -e '.parameters[] | select(.name == "massShiftW100MeV")
       | .unit == "MeV" and .scale == 100 and ((.value_physical - 30) | fabs) < 1' "$work/fit.json" >/dev/null \
  || { jq '.parameters[] | select(.name == "massShiftW100MeV")' "$work/fit.json"; fail "pseudo-data +30 MeV not recovered"; }

# --print-config prints a configuration that reads back.
"$lepus" produce wmass --full --print-config >"$work/full.json"
jq -e '.preset == "full" and .lepus_config_version == 1' "$work/full.json" >/dev/null || fail "print-config"
"$lepus" produce wmass --config "$work/full.json" --print-config >"$work/full2.json"
cmp -s "$work/full.json" "$work/full2.json" || fail "print-config does not round-trip"

# Inconsistent options and bad configurations.
expect_error "lepus: error: --events and --generate exclude each other" \
  produce wmass --events a.h5 --generate 10 -o "$work/x.h5"
expect_error "lepus: error: --data-truth-mw-shift applies to generated data only" \
  produce wmass --data-events d.h5 --data-truth-mw-shift 20 -o "$work/x.h5"
expect_error "lepus: error: --full: the preset comes from the 'preset' key of --config" \
  produce wmass --config "$work/small.json" --full -o "$work/x.h5"
expect_error "lepus: error: produce wmass: -o/--output FILE is required" produce wmass
expect_error "lepus: error: .*/no_such_dir/x\.h5" produce wmass --generate 1000 -o "$work/no_such_dir/x.h5"
expect_error "lepus: error: .*nonexistent\.h5" \
  produce wmass --events "$work/nonexistent.h5" --luminosity 1 -o "$work/x.h5"
"$lepus" generate --process wplus -n 2000 --seed 3 -o "$work/sim_events.h5" 2>/dev/null
expect_error "sim_events\.h5: the file holds simulation events \(attribute 'sample'\), but was given as data" \
  produce wmass --data-events "$work/sim_events.h5" -o "$work/x.h5"
echo '{"lepus_config_version": 1, "simulation": {"event": 10}}' >"$work/bad_key.json"
expect_error "bad_key\.json: unknown key 'simulation\.event' \(did you mean 'simulation\.events'\?\)" \
  produce wmass --config "$work/bad_key.json" -o "$work/x.h5"
echo '{"lepus_config_version": 1, "luminosity_pb": "200"}' >"$work/bad_type.json"
expect_error "bad_type\.json: luminosity_pb is \"200\" \(string\), but must be a number" \
  produce wmass --config "$work/bad_type.json" -o "$work/x.h5"
echo '{"lepus_config_version": 3}' >"$work/bad_version.json"
expect_error "bad_version\.json: lepus_config_version is 3, but this lepus reads version 1" \
  produce wmass --config "$work/bad_version.json" -o "$work/x.h5"
expect_error "lepus: error: .*no_config\.json: cannot open" \
  produce wmass --config "$work/no_config.json" -o "$work/x.h5"
echo "ok"
