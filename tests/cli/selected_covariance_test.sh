#!/usr/bin/env bash
# selected_covariance_test.sh LEPUS INPUT TMPDIR: `lepus fit` without an output that needs the
# covariance matrix computes the selected inverse (the report says accurate_selected) and writes
# the same JSON as with --full-covariance (bit for bit apart from timings: a small model,
# docs/numerics.md "Selected inverse"), also the --correlation-regex matrix; -o (the HDF5 file
# keeps the matrix) takes the full covariance.
set -euo pipefail
lepus=$1 input=$2 tmp=$3
mkdir -p "$tmp"
source "$(dirname "${BASH_SOURCE[0]}")/../shell_lib.sh"
for flags in "--no-bbstat" "" "--poi-positive --freeze syst1"; do
  # shellcheck disable=SC2086
  "$lepus" fit "$input" $flags --json "$tmp/sel.json" 2>"$tmp/sel.txt" || fail "selected fit ($flags): exit $?"
  # shellcheck disable=SC2086
  "$lepus" fit "$input" $flags --full-covariance --json "$tmp/full.json" 2>"$tmp/full.txt" \
    || fail "full fit ($flags): exit $?"
  # The report names the extent; the JSON (values and errors, no matrix) is the same.
  grep -q "covariance: accurate_selected" "$tmp/sel.txt" || fail "$flags: report does not say accurate_selected"
  grep -q "covariance: accurate (" "$tmp/full.txt" || fail "$flags: --full-covariance report not accurate"
  [[ $(jq -r .covariance_status "$tmp/sel.json") == accurate ]] || fail "$flags: JSON status not accurate"
  for field in value error; do
    a=$(jq -c "[.parameters[].$field]" "$tmp/sel.json")
    b=$(jq -c "[.parameters[].$field]" "$tmp/full.json")
    [[ "$a" == "$b" ]] || fail "$flags: ${field}s differ: $a vs $b"
  done
  a=$(jq -S -c 'del(.timings, .command_line)' "$tmp/sel.json")
  b=$(jq -S -c 'del(.timings, .command_line)' "$tmp/full.json")
  [[ "$a" == "$b" ]] || fail "$flags: JSON differs apart from timings and command line"
done
"$lepus" fit "$input" --json "$tmp/o.json" -o "$tmp/o.h5" 2>"$tmp/o.txt" || fail "fit -o: exit $?"
grep -q "covariance: accurate (" "$tmp/o.txt" || fail "-o did not take the full covariance"
# --correlation-regex: the rows of the subset, the same correlation matrix (JSON and report).
"$lepus" fit "$input" --json "$tmp/c.json" --correlation-regex "sig|syst5" 2>"$tmp/c.txt" \
  || fail "fit --correlation-regex: exit $?"
"$lepus" fit "$input" --json "$tmp/cf.json" --correlation-regex "sig|syst5" --full-covariance 2>"$tmp/cf.txt" \
  || fail "fit --correlation-regex --full-covariance: exit $?"
grep -q "covariance: accurate_selected" "$tmp/c.txt" || fail "--correlation-regex: not selected"
grep -q "covariance: accurate (" "$tmp/cf.txt" || fail "--full-covariance: not full"
a=$(jq -c .correlation "$tmp/c.json")
b=$(jq -c .correlation "$tmp/cf.json")
[[ "$a" != null && "$a" == "$b" ]] || fail "correlation differs: $a vs $b"
diff <(sed -n '/^correlation matrix/,/^$/p' "$tmp/c.txt") <(sed -n '/^correlation matrix/,/^$/p' "$tmp/cf.txt") \
  || fail "printed correlation matrix differs"
grep -q "^correlation matrix (2 parameters" "$tmp/c.txt" || fail "no printed correlation matrix"
echo ok
