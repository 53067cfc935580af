#!/usr/bin/env bash
# postfit_test.sh LEPUS DEMO_INPUT TMPDIR: `lepus fit --postfit --project wmass:pt
# --postfit-covariance -o RESULTS.h5 --json SUMMARY.json` on the demo input.
#  * exit 0; the report has the per-channel GoF, channel yields and the projection table;
#  * JSON: per-channel goodness of fit, pre-/post-fit channel totals (post-fit total within 0.1%
#    of the data, its uncertainty smaller than the prefit one), the projection listed;
#  * HDF5 (h5dump, when installed): prefit/ and postfit/ totals over the 1440 bins, per process,
#    the bin-to-bin covariance, the pT projection (30 bins) summing to the channel total and its
#    covariance diagonal equal to the squared errors.
set -euo pipefail
lepus=$1 input=$2 tmp=$3
mkdir -p "$tmp"
source "$(dirname "${BASH_SOURCE[0]}")/../shell_lib.sh"
h5=$tmp/postfit.h5 j=$tmp/postfit.json
"$lepus" fit "$input" --postfit --postfit-covariance --project wmass:pt -o "$h5" --json "$j" \
  2>"$tmp/err.txt" || { cat "$tmp/err.txt"; fail "exit code"; }
for word in "goodness of fit per channel" "yields per channel" "projection of wmass onto (pt): 30 bins"; do
  grep -qF "$word" "$tmp/err.txt" || { cat "$tmp/err.txt"; fail "stderr lacks '$word'"; }
done
jq -e '.gof.channels | length == 1 and .[0].channel == "wmass" and .[0].ndf == 1440 and .[0].chi2 > 0' \
  "$j" >/dev/null || fail "gof.channels: $(jq -c .gof "$j")"
# Post-fit channel total vs the data count printed in the report: within 0.1%.
post=$(jq '.yields.postfit.channels[0].total' "$j")
data=$(sed -n 's/^  wmass: 1440 bins, data \([0-9]*\)$/\1/p' "$tmp/err.txt")
[[ -n "$data" ]] || { cat "$tmp/err.txt"; fail "no data count in the report"; }
awk -v a="$post" -v d="$data" 'BEGIN {exit !((a - d)^2 < (1e-3 * d)^2)}' \
  || fail "post-fit total $post is not within 0.1% of the data $data"
jq -e '.yields.prefit.channels[0] as $pre | .yields.postfit.channels[0] as $post
    | $post.name == "wmass" and $post.nbins == 1440 and ($post.processes | length) == 4
      and $post.total_error > 0 and $post.total_error < $pre.total_error
      and (.yields.postfit.projections[0] | .channel == "wmass" and .axes == ["pt"] and .shape == [30])' \
  "$j" >/dev/null || fail "yields summary: $(jq -c .yields "$j")"

if ! command -v h5dump >/dev/null; then
  echo "ok (h5dump not installed: HDF5 contents not checked)"
  exit 0
fi
# Values of a dataset, one per line, full precision.
values() { h5dump -m '%.17g' -y -w 0 -d "$2" "$1" | sed -n '/DATA {/,/}/p' | sed '1d;$d' | tr ',' '\n' | tr -d ' ' | sed '/^$/d'; }
for set in prefit postfit; do
  [[ $(values "$h5" /$set/total | wc -l) -eq 1440 ]] || fail "/$set/total is not 1440 bins"
  [[ $(values "$h5" /$set/process | wc -l) -eq 5760 ]] || fail "/$set/process is not 1440 x 4"
  [[ $(values "$h5" /$set/total_covariance | wc -l) -eq $((1440 * 1440)) ]] || fail "no /$set/total_covariance"
done
total=$(values "$h5" /postfit/total | awk '{s += $1} END {printf "%.17g", s}')
proj=$(values "$h5" /postfit/projections/wmass__pt/values | awk '{s += $1} END {printf "%.17g", s}')
awk -v a="$total" -v b="$proj" -v c="$post" 'BEGIN {exit !((a - b)^2 < (1e-9 * a)^2 && (a - c)^2 < (1e-9 * a)^2)}' \
  || fail "pT projection sum $proj != channel total $total (JSON $post)"
paste <(values "$h5" /postfit/projections/wmass__pt/errors) \
      <(values "$h5" /postfit/projections/wmass__pt/covariance | awk 'NR % 31 == 1') \
  | awk '{d = $1 * $1 - $2; if (d * d > (1e-9 * $2)^2) bad = 1} END {exit bad}' \
  || fail "projection errors are not the covariance diagonal"
echo "ok"
