#!/usr/bin/env bash
# inspect_test.sh LEPUS INPUT: text and JSON descriptions of a fit input.
set -euo pipefail
lepus=$1 input=$2
"$lepus" inspect "$input" | tee /dev/stderr | grep -q "processes:"
"$lepus" inspect "$input" --json | jq -e '
  (.channels | length) >= 1 and (.processes | length) >= 1 and has("tensor") and
  (.tensor.density >= 0 and .tensor.density <= 1) and (.data.total > 0)' >/dev/null
echo "ok"
