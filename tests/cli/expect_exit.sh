#!/usr/bin/env bash
# expect_exit.sh CODE REGEX -- COMMAND...
# Runs COMMAND; passes when it exits with CODE and its stderr matches the extended REGEX
# (grep -E). Prints both streams on failure.
set -uo pipefail
want=$1 regex=$2
shift 2
[[ "${1:-}" == "--" ]] && shift
out=$(mktemp) err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT
"$@" >"$out" 2>"$err"
got=$?
fail=0
if [[ $got -ne $want ]]; then
  echo "FAIL: exit code $got, expected $want: $*"
  fail=1
fi
if ! grep -Eq -- "$regex" "$err"; then
  echo "FAIL: stderr does not match /$regex/"
  fail=1
fi
if [[ $fail -ne 0 ]]; then
  echo "--- stdout"; head -c 4000 "$out"; echo "--- stderr"; head -c 4000 "$err"
  exit 1
fi
echo "ok: exit $got, stderr matches /$regex/"
