#!/usr/bin/env bash
# inspect_rabbit_test.sh LEPUS MAKE_RABBIT_FILE PICKLE WORKDIR: `lepus inspect` and `lepus fit
# --postfit` on a rabbit-layout input whose channels come from its pickled `meta` (written by
# Python's pickle, tests/data/rabbit_meta/make_pickles.py): channel names, axis names, edges and
# labels, provenance, and the post-fit projections over those axes.
set -euo pipefail
lepus=$1 make=$2 pickle=$3 work=$4
mkdir -p "$work"
input=$work/rabbit_meta.hdf5
rm -f "$input"
"$make" "$pickle" "$input"

text=$("$lepus" inspect "$input" 2>"$work/inspect.err")
echo "$text"
grep -q "rabbit metadata" <<<"$text"
grep -q "provenance (rabbit meta_info): args, command, custom, git_hash" <<<"$text"
grep -q "^  sig: 48 bins$" <<<"$text"
grep -q "^    pt: 6 bins in \[25, 55\]$" <<<"$text"
grep -q "^    region: 3 bins: a, b, c$" <<<"$text"
grep -q "^  gen: 12 bins \[masked\]$" <<<"$text"
grep -q "^    ptgen: 6 bins: underflow (< 0), \[0, 2), \[2, 4), \[4, 6), \[6, 8), overflow (>= 8)$" <<<"$text"
grep -q 'unknown keys "user_note"' "$work/inspect.err"
if grep -q "no meta_json" "$work/inspect.err"; then echo "fallback warning printed" >&2; exit 1; fi

"$lepus" inspect "$input" --json 2>/dev/null | jq -e '
  .metadata_format == "rabbit" and .meta_info.git_hash == "0123abc" and
  ([.channels[].name] == ["sig", "ctl", "tr", "gen"]) and
  ([.channels[].masked] == [false, false, false, true]) and
  ([.channels[].bins] == [48, 9, 6, 12]) and
  ([.channels[0].axes[].name] == ["pt", "eta", "charge"]) and
  (.channels[0].axes[0].edges == [25, 30, 35, 40, 45, 50, 55]) and
  (.channels[0].axes[1].edges == [-2.4, -1.2, 0, 1.2, 2.4]) and
  (.channels[0].axes[2].labels == ["-1", "1"]) and
  (.channels[1].axes[0].name == "axis0") and
  (.channels[3].axes[1].labels == ["False", "True"])' >/dev/null

# Post-fit yields projected onto the pickled axes (a fitted and the masked channel).
"$lepus" fit "$input" --postfit --project sig:eta --project gen:ptgen --json "$work/fit.json" \
  >"$work/fit.out" 2>"$work/fit.err" || [[ $? == 2 ]]
jq -e '
  ([.yields.postfit.projections[] | {channel, axes, shape}] ==
   [{channel: "sig", axes: ["eta"], shape: [4]}, {channel: "gen", axes: ["ptgen"], shape: [6]}])' \
  "$work/fit.json" >/dev/null
grep -q "^  \[-1.2,0) " "$work/fit.err"
grep -q "^  overflow (>= 8) " "$work/fit.err"
echo "ok"
