#!/usr/bin/env bash
# toys_test.sh LEPUS INPUT TMPDIR: `lepus toys INPUT --no-bbstat -n 20 --seed 7`.
#  * exit 0; stderr has the progress line "toys: 20/20" and the pull / saturated-statistic summary;
#  * JSON summary: ntoys, seed, mode, converged (all 20), pulls of the POI (name, mean, width,
#    ...), gof (mean, width, ndf = 40 bins - 1 free POI);
#  * reproducible: the same seed at another thread count gives an identical JSON apart from the
#    command line and thread count; another seed gives other pulls;
#  * HDF5 (h5dump, when installed): toys/values is 20 x 9, toys/status has 20 entries;
#  * --observed --pull syst6 --no-randomize-constraints: mode "observed", the chosen pull only.
set -euo pipefail
lepus=$1 input=$2 tmp=$3
mkdir -p "$tmp"
source "$(dirname "${BASH_SOURCE[0]}")/../shell_lib.sh"
"$lepus" toys "$input" --no-bbstat -n 20 --seed 7 --threads 2 --json "$tmp/a.json" \
  -o "$tmp/toys.h5" 2>"$tmp/err.txt" || { cat "$tmp/err.txt"; fail "exit code"; }
for word in "toys: 20/20" "20 of 20 toy fits converged" "pull mean" "saturated statistic: mean"; do
  grep -qF "$word" "$tmp/err.txt" || { cat "$tmp/err.txt"; fail "stderr lacks '$word'"; }
done
jq -e '.kind == "toys" and .ntoys == 20 and .seed == 7 and .mode == "expected"
       and .poisson and .randomize_constraints and .converged == 20 and .converged_fraction == 1
       and .status_counts.converged == 20
       and (.gof | .ndf == 39 and .mean > 0 and .width > 0 and .mean_over_ndf > 0)
       and (.pulls | length == 1 and (.[0] | .name == "sig" and .kind == "poi" and .truth == 1
            and .toys == 20 and (.mean | type) == "number" and .width > 0 and .mean_uncertainty > 0))
       and .truth.sig == 1' "$tmp/a.json" >/dev/null || fail "summary: $(jq -c . "$tmp/a.json")"

# Same seed, one thread: identical results.
"$lepus" toys "$input" --no-bbstat -n 20 --seed 7 --threads 1 --json "$tmp/b.json" \
  2>/dev/null || fail "exit code (second run)"
strip='del(.command_line, .threads)'
[[ "$(jq -S "$strip" "$tmp/a.json")" == "$(jq -S "$strip" "$tmp/b.json")" ]] \
  || fail "same seed, different results: $(diff <(jq -S "$strip" "$tmp/a.json") <(jq -S "$strip" "$tmp/b.json") | head -20)"
# Another seed: other pulls.
"$lepus" toys "$input" --no-bbstat -n 20 --seed 8 --json "$tmp/c.json" 2>/dev/null \
  || fail "exit code (seed 8)"
[[ "$(jq -c .pulls "$tmp/a.json")" != "$(jq -c .pulls "$tmp/c.json")" ]] \
  || fail "seeds 7 and 8 give identical pulls"

if command -v h5dump >/dev/null; then
  h5dump -H -d /toys/values "$tmp/toys.h5" | grep -q "( 20, 9 )" || fail "toys/values is not 20 x 9"
  h5dump -H -d /toys/status "$tmp/toys.h5" | grep -q "( 20 )" || fail "toys/status is not [20]"
  h5dump -H -d /pulls/values "$tmp/toys.h5" | grep -q "( 20, 1 )" || fail "pulls/values is not 20 x 1"
fi

"$lepus" toys "$input" --no-bbstat -n 10 --seed 1 --observed --no-randomize-constraints \
  --pull syst6 --json - 2>"$tmp/err3.txt" >"$tmp/d.json" || { cat "$tmp/err3.txt"; fail "exit code (--observed)"; }
jq -e '.mode == "observed" and .randomize_constraints == false and .data == "toys:observed"
       and (.pulls | length == 1 and .[0].name == "syst6" and .[0].truth != 0)' "$tmp/d.json" >/dev/null \
  || fail "--observed summary: $(jq -c . "$tmp/d.json")"
echo "ok"
