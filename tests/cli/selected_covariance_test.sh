#!/usr/bin/env bash
# selected_covariance_test.sh LEPUS INPUT TMPDIR: `lepus fit` without an output that needs the
# covariance matrix computes the selected inverse (covariance_status accurate_selected) and
# writes the same JSON values and errors as with --full-covariance (bit for bit: a small model,
# docs/numerics.md "Selected inverse"); -o (the HDF5 file keeps the matrix) and
# --correlation-regex take the full covariance.
set -euo pipefail
lepus=$1 input=$2 tmp=$3
mkdir -p "$tmp"
fail() { echo "FAIL: $*"; exit 1; }
for flags in "--no-bbstat" "" "--poi-positive --freeze syst1"; do
  # shellcheck disable=SC2086
  "$lepus" fit "$input" $flags --json "$tmp/sel.json" 2>"$tmp/sel.txt" || fail "selected fit ($flags): exit $?"
  # shellcheck disable=SC2086
  "$lepus" fit "$input" $flags --full-covariance --json "$tmp/full.json" 2>"$tmp/full.txt" \
    || fail "full fit ($flags): exit $?"
  [[ $(jq -r .covariance_status "$tmp/sel.json") == accurate_selected ]] || fail "$flags: not accurate_selected"
  [[ $(jq -r .covariance_status "$tmp/full.json") == accurate ]] || fail "$flags: --full-covariance not accurate"
  grep -q "covariance: accurate_selected" "$tmp/sel.txt" || fail "$flags: report does not say accurate_selected"
  for field in value error; do
    a=$(jq -c "[.parameters[].$field]" "$tmp/sel.json")
    b=$(jq -c "[.parameters[].$field]" "$tmp/full.json")
    [[ "$a" == "$b" ]] || fail "$flags: ${field}s differ: $a vs $b"
  done
  a=$(jq -c '[.nll, .edm, .gof]' "$tmp/sel.json")
  b=$(jq -c '[.nll, .edm, .gof]' "$tmp/full.json")
  [[ "$a" == "$b" ]] || fail "$flags: nll/edm/gof differ: $a vs $b"
done
"$lepus" fit "$input" --json "$tmp/o.json" -o "$tmp/o.h5" 2>/dev/null || fail "fit -o: exit $?"
[[ $(jq -r .covariance_status "$tmp/o.json") == accurate ]] || fail "-o did not take the full covariance"
"$lepus" fit "$input" --json "$tmp/c.json" --correlation-regex "sig|syst0" 2>"$tmp/c.txt" || fail "fit --correlation-regex: exit $?"
[[ $(jq -r .covariance_status "$tmp/c.json") == accurate ]] || fail "--correlation-regex did not take the full covariance"
echo ok
