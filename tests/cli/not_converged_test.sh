#!/usr/bin/env bash
# not_converged_test.sh LEPUS INPUT TMPDIR: a fit stopped after one iteration exits 2 and still
# writes its JSON summary, with a status other than "converged".
set -uo pipefail
lepus=$1 input=$2 tmp=$3
mkdir -p "$tmp"
rm -f "$tmp/nc.json"
"$lepus" fit "$input" --max-iter 1 --json "$tmp/nc.json" 2>"$tmp/nc.err"
code=$?
[[ $code -eq 2 ]] || { echo "FAIL: exit code $code, expected 2"; cat "$tmp/nc.err"; exit 1; }
jq -e '.status != "converged"' "$tmp/nc.json" >/dev/null || { echo "FAIL: JSON"; exit 1; }
echo "ok"
