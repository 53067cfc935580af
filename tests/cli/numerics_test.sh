#!/usr/bin/env bash
# numerics_test.sh LEPUS DIR: honest numerical statuses on the inputs of numerics_inputs (in DIR).
#  * collinear9.h5 (free sysA, sysB with logk equal to 1e-9): exit 2, the direction named;
#  * collinear.h5 (the same at 1e-7): `fit` exits 2, covariance
#    near_singular naming sysA and sysB, no error printed in the report, JSON status and message;
#    --impacts, --postfit, --impact-refit, --combine: exit 2, "not computed: the fit's covariance is
#    near_singular"; `scan` without --range: exit 2, "cannot set the range"; with --range: the scan
#    runs, exit 2 with the warning;
#  * zero_bin.h5 (a bin with zero yield and zero events) fits: exit 0, covariance accurate;
#  * zero_bin_events.h5 (zero yield, 2 events): exit 2 naming the bin;
#  * tiny.h5 (yields 1e-300, no events) fits; huge.h5 (1e300): exit 2 naming the bin and value.
set -uo pipefail
lepus=$1 dir=$2
source "$(dirname "${BASH_SOURCE[0]}")/../shell_lib.sh"
# expect CODE REGEX -- COMMAND...: exit code and a stderr match (grep -E).
expect() {
  local want=$1 regex=$2
  shift 3
  "$@" >"$dir/out.txt" 2>"$dir/err.txt"
  local got=$?
  [[ $got -eq $want ]] || { cat "$dir/err.txt"; fail "exit code $got, expected $want: $*"; }
  grep -Eq -- "$regex" "$dir/err.txt" || { cat "$dir/err.txt"; fail "stderr does not match /$regex/: $*"; }
}

expect 2 'direction dominated by (sysA \(\+0\.7[01]\), sysB|sysB \(\+0\.7[01]\), sysA) \(-0\.7[01]\)' -- \
  "$lepus" fit "$dir/collinear9.h5"
grep -q "errors not shown" "$dir/err.txt" || fail "collinear9: report does not say that errors are not shown"

c=$dir/collinear.h5
expect 2 'direction dominated by (sysA \(\+0\.7[01]\), sysB|sysB \(\+0\.7[01]\), sysA) \(-0\.7[01]\)' -- \
  "$lepus" fit "$c" --json "$dir/c.json"
grep -q "covariance: near_singular" "$dir/err.txt" || fail "report lacks the covariance status"
grep -q "errors not shown" "$dir/err.txt" || fail "report does not say that errors are not shown"
grep -Eq "lepus: the fit converged, but the fit's covariance is near_singular" "$dir/err.txt" ||
  fail "no final message"
# The parameter table: the error column of sysA is "-", not a number like 1e+08.
grep -Eq '^sysA +nuisance +[-0-9.e+]+ +- ' "$dir/err.txt" || { cat "$dir/err.txt"; fail "sysA error printed"; }
if command -v jq >/dev/null; then
  jq -e '.status == "converged" and .covariance_status == "near_singular"
         and (.covariance_message | test("sysA")) and .hessian_scaled_ratio < 1e-12' \
    "$dir/c.json" >/dev/null || fail "JSON: $(jq -c '{status, covariance_status, covariance_message}' "$dir/c.json")"
fi
expect 2 "impacts not computed: the fit's covariance is near_singular" -- "$lepus" fit "$c" --impacts
expect 2 "pre-/post-fit yields not computed: the fit's covariance is near_singular" -- \
  "$lepus" fit "$c" --postfit
expect 2 "--impact-refit not computed: the fit's covariance is near_singular" -- \
  "$lepus" fit "$c" --impact-refit sysC
expect 2 "combinations not computed: the fit's covariance is near_singular" -- \
  "$lepus" fit "$c" --combine "d=sig - sysC"
expect 2 "cannot set the range of sig from its Hessian error: the fit's covariance is near_singular.*--range" -- \
  "$lepus" scan "$c" --param sig
expect 2 "warning: the best fit converged, but the fit's covariance is near_singular" -- \
  "$lepus" scan "$c" --param sig --range 0.5 1.5 --points 3

expect 0 "fit status: converged" -- "$lepus" fit "$dir/zero_bin.h5" --impacts --postfit
grep -q "covariance: accurate" "$dir/err.txt" || fail "zero_bin: covariance not accurate"
expect 2 "bin 1 \(channel ch, bin 1\): expected yield 0 with 2 observed events" -- \
  "$lepus" fit "$dir/zero_bin_events.h5"
expect 0 "covariance: accurate" -- "$lepus" fit "$dir/tiny.h5"
expect 2 "bin 1 \(channel ch, bin 1\): expected yield 2e\+300 \(observed 2e\+300\) is above 1e\+150" -- \
  "$lepus" fit "$dir/huge.h5"
echo ok
