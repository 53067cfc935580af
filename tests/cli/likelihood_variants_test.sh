#!/usr/bin/env bash
# likelihood_variants_test.sh LEPUS INPUT TMPDIR: the flags of rabbit's fit types on the command
# line. Each fit type is reported (stderr line, JSON key `likelihood`, HDF5 root attribute), a
# chi-square fit differs from the Poisson one, a covariance fit without hdata_cov_inv uses the
# diagonal data variance and then equals the chi-square fit with normal-additive betas, and the
# refused combinations exit 1 with a message.
set -euo pipefail
lepus=$1 input=$2 tmp=$3
mkdir -p "$tmp"
source "$(dirname "${BASH_SOURCE[0]}")/../shell_lib.sh"

fit() {  # fit NAME FLAGS...
  local name=$1
  shift
  "$lepus" fit "$input" --json "$tmp/$name.json" -o "$tmp/$name.h5" "$@" 2>"$tmp/$name.err" \
    || { cat "$tmp/$name.err"; fail "$name: exit code $?"; }
}
fit poisson
fit chisq --chisq-fit
fit chisq_add --chisq-fit --bin-by-bin-stat-type normal-additive
fit cov --covariance-fit
fit nmult --bin-by-bin-stat-type normal-multiplicative
fit full --bin-by-bin-stat-mode full --impacts --postfit
fit full_asimov --bin-by-bin-stat-mode full --asimov --impacts --global-impacts
fit full_gamma --bin-by-bin-stat-mode full --bin-by-bin-stat-type gamma
fit full_gamma_mf --bin-by-bin-stat-mode full --bin-by-bin-stat-type gamma --method matrix_free
fit cov_full --covariance-fit --bin-by-bin-stat-mode full

check() {  # check NAME JQ-FILTER
  jq -e "$2" "$tmp/$1.json" >/dev/null || { jq '.likelihood' "$tmp/$1.json"; fail "$1: $2"; }
}
check poisson '.likelihood.data_term == "poisson" and .likelihood.bin_by_bin_stat_type == "gamma"'
check chisq '.likelihood.data_term == "chisq" and .likelihood.data_variance == "data"'
check cov '.likelihood.data_term == "covariance" and .likelihood.bin_by_bin_stat_type == "normal-additive"'
check nmult '.likelihood.bin_by_bin_stat_type == "normal-multiplicative"'
check poisson '.likelihood.bin_by_bin_stat_mode == "lite"'
# Full mode: automatic = normal-multiplicative (rabbit); its impacts include the MC statistics and
# the global impacts close on Asimov data.
check full '.likelihood.bin_by_bin_stat_mode == "full" and .likelihood.bin_by_bin_stat_type == "normal-multiplicative"'
check full '.impacts.grouped_nominal | to_entries | all(.value.binByBinStat > 0)'
# A diagonal covariance fit in full mode (normal-additive, automatic) has the same profiled NLL as
# in lite mode.
check cov_full '.likelihood.bin_by_bin_stat_mode == "full" and .likelihood.bin_by_bin_stat_type == "normal-additive"'
cf=$(jq '.parameters[0].value' "$tmp/cov_full.json")
cl=$(jq '.parameters[0].value' "$tmp/cov.json")
awk -v a="$cf" -v v="$cl" 'BEGIN { d = a - v; exit !(d * d < 1e-14) }' || fail "full-mode covariance fit $cf differs from lite $cl"
check full_asimov '.impacts.global_closure | to_entries | all((.value | fabs) < 1e-6)'
check full_gamma '.likelihood.description | test("Barlow-Beeston full \\(gamma\\)")'
# The matrix-free Newton-CG fit finds the same minimum as the dense one.
g=$(jq '.parameters[0].value' "$tmp/full_gamma.json")
gm=$(jq '.parameters[0].value' "$tmp/full_gamma_mf.json")
awk -v a="$g" -v b="$gm" 'BEGIN { d = a - b; exit !(d * d < 1e-12) }' || fail "matrix-free full-mode POI $gm vs dense $g"
grep -q "Barlow-Beeston full" "$tmp/full.err" || fail "no full-mode likelihood line in the report"
h5dump -d /postfit/total "$tmp/full.h5" >/dev/null || fail "full mode: no postfit yields"
# The full-mode POI differs from the lite normal-multiplicative one (several processes per bin).
f=$(jq '.parameters[0].value' "$tmp/full.json")
n=$(jq '.parameters[0].value' "$tmp/nmult.json")
awk -v f="$f" -v n="$n" 'BEGIN { exit !((f - n) ^ 2 > 1e-14) }' || fail "full-mode POI $f equals the lite one $n"
grep -q "likelihood: chi-square" "$tmp/chisq.err" || fail "no likelihood line in the chi-square report"
h5dump -a /likelihood "$tmp/cov.h5" | grep -q "chi-square with the data covariance" \
  || fail "HDF5 root attribute 'likelihood' missing"

# The POI of the chi-square fit differs from the Poisson one; the diagonal covariance fit (data
# variance = data) equals the chi-square fit with normal-additive betas.
p=$(jq '.parameters[0].value' "$tmp/poisson.json")
c=$(jq '.parameters[0].value' "$tmp/chisq.json")
a=$(jq '.parameters[0].value' "$tmp/chisq_add.json")
v=$(jq '.parameters[0].value' "$tmp/cov.json")
awk -v p="$p" -v c="$c" 'BEGIN { exit !((p - c) ^ 2 > 1e-12) }' || fail "chi-square POI $c equals Poisson $p"
awk -v a="$a" -v v="$v" 'BEGIN { d = a - v; exit !(d * d < 1e-14) }' \
  || fail "diagonal covariance fit $v differs from the chi-square fit $a"

expect() {  # expect REGEX ARGS...
  local regex=$1
  shift
  bash "$(dirname "$0")/expect_exit.sh" 1 "$regex" -- "$lepus" "$@" >"$tmp/expect.log" \
    || { cat "$tmp/expect.log"; fail "expected exit 1 and /$regex/: $*"; }
}
expect "chisq-data-var needs" fit "$input" --chisq-data-var
expect "excludes" fit "$input" --chisq-fit --covariance-fit
expect "gamma was requested" fit "$input" --covariance-fit --bin-by-bin-stat-type gamma
expect "ceres supports the Poisson likelihood" fit "$input" --chisq-fit --method ceres
expect "ceres supports the Poisson likelihood" fit "$input" --bin-by-bin-stat-mode full --bin-by-bin-stat-type gamma --method ceres
expect "gamma was requested" fit "$input" --covariance-fit --bin-by-bin-stat-mode full --bin-by-bin-stat-type gamma
expect "half not in \{lite,full\}" fit "$input" --bin-by-bin-stat-mode half
expect "need Gaussian data" toys "$input" --covariance-fit --ntoys 2 --seed 1 --json "$tmp/t.json"
expect "for chi-square and covariance fits" toys "$input" --normal-data --ntoys 2 --seed 1 --json "$tmp/t.json"
# Toys of a chi-square fit run (Poisson data, as rabbit's default) and report the likelihood.
"$lepus" toys "$input" --chisq-fit --ntoys 20 --seed 3 --json "$tmp/toys.json" 2>"$tmp/toys.err" \
  || { cat "$tmp/toys.err"; fail "chi-square toys: exit code $?"; }
jq -e '.likelihood.data_term == "chisq"' "$tmp/toys.json" >/dev/null || fail "toys JSON: likelihood"
echo "ok"
