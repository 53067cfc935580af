#!/usr/bin/env bash
# impacts_test.sh LEPUS DEMO_INPUT TMPDIR: `lepus fit --impacts --global-impacts --group
# --combine` on the demo input.
#  * observed data: exit 0; JSON impacts.{nominal,global,grouped_nominal,grouped_global} keyed by
#    the NOI (massShiftW100MeV), the POI and the combination, in MeV for the mass shift; the
#    extra group is a row; the combination has value and error; the human table has
#    Nominal/Global columns and a Total row equal to the fit error in MeV;
#  * Asimov data, with and without bin-by-bin statistics: the global impacts close,
#    |global_closure| < 1e-6 for every target;
#  * --impact-refit on Asimov data: the fix-and-shift shifts agree with the nominal impact
#    within 5% (the demo likelihood is close to Gaussian);
#  * --prior-scale: reported on stderr and visible as the prefit error of the nuisances.
set -euo pipefail
lepus=$1 input=$2 tmp=$3
mkdir -p "$tmp"
noi=massShiftW100MeV
source "$(dirname "${BASH_SOURCE[0]}")/../shell_lib.sh"

"$lepus" fit "$input" --impacts --global-impacts --group 'muonScaleCentral=muonScale_eta[2-3]' \
  --combine 'mW=803.602 + massShiftW100MeV' --combine 'diff=Wmunu - massShiftW100MeV' \
  --json "$tmp/observed.json" 2>"$tmp/observed.err" || { cat "$tmp/observed.err"; fail "exit code $?"; }
j=$tmp/observed.json
for key in nominal global grouped_nominal grouped_global; do
  for target in $noi Wmunu mW diff; do
    jq -e --arg k "$key" --arg t "$target" '.impacts[$k][$t] | type == "object" and length > 0' "$j" \
      >/dev/null || fail "impacts.$key.$target missing"
  done
done
jq -e --arg t $noi '.impacts.grouped_nominal[$t] | has("muonScaleCentral") and has("muonScale")
    and has("stat") and has("binByBinStat")' "$j" >/dev/null || fail "groups missing"
jq -e --arg t $noi '.impacts.unit[$t] == "MeV" and .impacts.unit.mW == "MeV" and .impacts.unit.Wmunu == ""' \
  "$j" >/dev/null || fail "units"
# Total in MeV = the fit error in MeV; the mW combination has the same uncertainty.
jq -e --arg t $noi '(.parameters[] | select(.name == $t) | .error_physical) as $e
    | ((.impacts.total[$t] - $e) | fabs) < 1e-9 * $e and ((.impacts.total.mW - $e) | fabs) < 1e-9 * $e' \
  "$j" >/dev/null || fail "impact total is not the fit error"
# Nominal impact = C_ij / sqrt(C_jj) <= total; global closure on observed data: a few percent.
jq -e --arg t $noi '.impacts.total[$t] as $tot | [.impacts.nominal[$t][] | fabs <= $tot * (1 + 1e-9)]
    | all' "$j" >/dev/null || fail "a nominal impact exceeds the total"
jq -e --arg t $noi '.impacts.global_closure[$t] | fabs < 0.1' "$j" >/dev/null \
  || fail "closure on observed data: $(jq --arg t $noi '.impacts.global_closure[$t]' "$j")"
jq -e '[.combinations[] | .name] == ["mW", "diff"]
    and (.combinations[0] | ((.value - 803.602) | fabs) < 1 and .error > 0
         and ((.correlations.massShiftW100MeV - 1) | fabs) < 1e-9)' "$j" >/dev/null \
  || fail "combinations: $(jq -c .combinations "$j")"
for word in "impacts on $noi (MeV)" "Nominal" "Global" "Total" "muonScaleCentral" "global closure" \
            "combinations:" "mW = 803.602 + massShiftW100MeV = " "largest individual impacts"; do
  grep -qF -- "$word" "$tmp/observed.err" || { cat "$tmp/observed.err"; fail "stderr lacks '$word'"; }
done
# Each of the 4 tables: group rows sorted by decreasing nominal impact, then Total.
awk '/^impacts on/ {n++; rows = 1; prev = 1e300; next}
     rows && /^  Total / {totals++; rows = 0; next}
     rows && /^  [A-Za-z]/ && $1 != "source" {if ($2 + 0 > prev) bad = 1; prev = $2 + 0}
     END {exit !(n == 4 && totals == 4 && !bad)}' "$tmp/observed.err" \
  || { cat "$tmp/observed.err"; fail "impact tables: not 4 tables sorted with a Total row"; }

for bb in "" "--no-bbstat"; do
  "$lepus" fit "$input" --asimov $bb --global-impacts --combine 'mW=803.602 + massShiftW100MeV' \
    --json "$tmp/asimov.json" 2>"$tmp/asimov.err" || { cat "$tmp/asimov.err"; fail "asimov $bb"; }
  jq -e '[.impacts.global_closure[] | fabs < 1e-6] | all and length == 3' "$tmp/asimov.json" >/dev/null \
    || fail "closure on Asimov data $bb: $(jq -c .impacts.global_closure "$tmp/asimov.json")"
  if [[ -z "$bb" ]]; then
    jq -e --arg t $noi '.impacts.grouped_nominal[$t].binByBinStat > 0' "$tmp/asimov.json" >/dev/null \
      || fail "no binByBinStat"
  else
    jq -e --arg t $noi '.impacts.grouped_nominal[$t] | has("binByBinStat") | not' "$tmp/asimov.json" \
      >/dev/null || fail "binByBinStat without bin-by-bin statistics"
  fi
done

"$lepus" fit "$input" --asimov --impact-refit effIso --json "$tmp/refit.json" 2>"$tmp/refit.err" \
  || { cat "$tmp/refit.err"; fail "--impact-refit"; }
jq -e '.impact_refit[0].nuisance == "effIso" and ([.impact_refit[0].targets[]
    | (.nominal | fabs) > 0 and ((.refit_up - .nominal) | fabs) < 0.05 * (.nominal | fabs)
      and ((.refit_down + .nominal) | fabs) < 0.05 * (.nominal | fabs)] | all and length == 2)' \
  "$tmp/refit.json" >/dev/null || fail "refit cross-check: $(jq -c .impact_refit "$tmp/refit.json")"
grep -q "impact of effIso by refits" "$tmp/refit.err" || fail "no refit table"

"$lepus" fit "$input" --prior-scale 'muonScale_eta[0-2]=2.5' --json "$tmp/prior.json" 2>"$tmp/prior.err" \
  || { cat "$tmp/prior.err"; fail "--prior-scale"; }
grep -qF "scaled prior width of 3 systematics matching 'muonScale_eta[0-2]' by 2.5" "$tmp/prior.err" \
  || { cat "$tmp/prior.err"; fail "no prior-scale message"; }
jq -e '[.parameters[] | select(.name | test("^muonScale_eta[0-2]$")) | .prefit_error == 2.5]
    | all and length == 3' "$tmp/prior.json" >/dev/null || fail "prefit errors not scaled"
jq -e '.parameters[] | select(.name == "muonScale_eta3") | .prefit_error == 1' "$tmp/prior.json" \
  >/dev/null || fail "unmatched nuisance changed"
echo "ok"
