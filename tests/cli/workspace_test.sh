#!/usr/bin/env bash
# workspace_test.sh LEPUS DATA_DIR WORK_DIR: HistFactory JSON workspaces through the CLI (format
# detection by content, gzip, --patch, --patchset/--patch-name, --measurement, the interpolation
# flags, inspect's modifier listing) and their error messages.
set -euo pipefail
lepus=$1 data=$2 work=$3
mkdir -p "$work"
ws=$data/two_channel.json

# inspect: the model summary and the HistFactory listing.
"$lepus" inspect "$ws" >"$work/inspect.txt"
for want in "HistFactory workspace: measurement main, POI mu" \
            "channel CR (2 bins)" "sample other: yield 22, no modifiers" \
            "shapesys bkg_shape: 3 parameters bkg_shape[0] .. bkg_shape[2]" \
            "bkg_shape[0] (poisson(centre 1, tau 100), init 1, bounds [1e-10, 10])" \
            "staterror_SR[2] (gaussian(centre 1, sigma 1), init 1, bounds [1e-10, 10], fixed)" \
            "lumi lumi: lumi (gaussian(centre 1, sigma 0.02), init 1, bounds [0.5, 1.5])" \
            "normfactor mu: mu (free, init 1, bounds [0, 5])" \
            "histosys jes: jes (gaussian(centre 0, sigma 1), init 0, bounds [-5, 5])"; do
  grep -qF -- "$want" "$work/inspect.txt" || { echo "FAIL: inspect lacks: $want"; cat "$work/inspect.txt"; exit 1; }
done

"$lepus" inspect "$ws" --json >"$work/inspect.json"
jq -e '.metadata_format == "histfactory" and (.workspace.channels | length) == 2 and
       (.workspace.parameters | length) == 14 and .systematics.noi_names == ["mu"] and
       .nbins == 5 and .data.total == 315' "$work/inspect.json" >/dev/null

# gzip and a JSON file named like HDF5: detected by content, same model.
cp "$data/two_channel.json.gz" "$work/ws_copy.h5"
"$lepus" inspect "$work/ws_copy.h5" --json | jq -e '.metadata_format == "histfactory"' >/dev/null
diff <(jq -S '.workspace' "$work/inspect.json") \
     <("$lepus" inspect "$data/two_channel.json.gz" --json | jq -S '.workspace')

# Patches: the observed data of SR and a new normfactor; the patchset's signal hypothesis.
"$lepus" inspect "$ws" --patch "$data/two_channel_patch.json" --json |
  jq -e '.data.total == 317 and (.systematics.free_names | index("other_norm")) != null' >/dev/null
"$lepus" inspect "$ws" --patchset "$data/two_channel_patchset.json" --patch-name mass_400 --json |
  jq -e '(.processes[] | select(.name == "signal") | .prefit_yield) == 13' >/dev/null

# Measurement and interpolation flags.
"$lepus" inspect "$ws" --measurement fixed_jes >"$work/fixed_jes.txt"
grep -qF "jes (gaussian(centre 0, sigma 1), init 0.5, bounds [-5, 5], fixed)" "$work/fixed_jes.txt"
"$lepus" inspect "$ws" --normsys-interp code1 --histosys-interp code0 >/dev/null

# Every command that reads a fit input takes the workspace flags.
for cmd in fit inspect scan toys; do
  "$lepus" "$cmd" --help >"$work/help.txt"
  grep -q -- "--patch-name" "$work/help.txt" || { echo "FAIL: $cmd lacks --patch-name"; exit 1; }
done

# Errors: exit code 1 and a message naming the file and the JSON path.
expect_error() {
  local regex=$1
  shift
  set +e
  "$@" >/dev/null 2>"$work/err.txt"
  local rc=$?
  set -e
  if [[ $rc -ne 1 ]] || ! grep -Eq -- "$regex" "$work/err.txt"; then
    echo "FAIL: exit $rc, stderr does not match /$regex/: $*"
    cat "$work/err.txt"
    exit 1
  fi
}
jq '.channels[0].samples[1].modifiers[3].data = [1, 2]' "$ws" >"$work/bad.json"
expect_error "bad\.json: channels\[0\]\.samples\[1\]\.modifiers\[3\]\.data: has 2 entries, but the channel has 3 bins" \
  "$lepus" inspect "$work/bad.json"
jq '.channels[0].samples[0].modifiers[0].type = "normfactr"' "$ws" >"$work/bad_type.json"
expect_error "modifiers\[0\]\.type: is 'normfactr', but must be one of" "$lepus" fit "$work/bad_type.json"
printf '{"channels": [' >"$work/truncated.json"
expect_error "truncated\.json: is not valid JSON" "$lepus" inspect "$work/truncated.json"
expect_error "has no patch named 'mass_999' \(available: 'mass_300', 'mass_400'\)" \
  "$lepus" inspect "$ws" --patchset "$data/two_channel_patchset.json" --patch-name mass_999
expect_error "measurements: has no measurement named 'nope'" "$lepus" inspect "$ws" --measurement nope
expect_error "--patchset requires --patch-name" "$lepus" inspect "$ws" --patchset "$data/two_channel_patchset.json"
expect_error "--normsys-interp: code2 not in" "$lepus" inspect "$ws" --normsys-interp code2
echo '[{"op": "remove", "path": "/channels/9"}]' >"$work/bad_patch.json"
expect_error "bad_patch\.json\[0\] \(remove /channels/9\): cannot be applied" \
  "$lepus" inspect "$ws" --patch "$work/bad_patch.json"
echo "ok"
