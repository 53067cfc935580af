#!/usr/bin/env bash
# matrix_free_test.sh LEPUS INPUT TMPDIR: --method matrix_free gives the dense fit's values and
# the POI/NOI errors (covariance_status targets_only; other errors null).
set -euo pipefail
lepus=$1 input=$2 tmp=$3
mkdir -p "$tmp"
"$lepus" fit "$input" --method dense --json "$tmp/dense.json" 2>/dev/null
"$lepus" fit "$input" --method matrix_free --json "$tmp/mf.json" 2>/dev/null
jq -e '.covariance_status == "targets_only"' "$tmp/mf.json" >/dev/null || { echo "FAIL: status"; exit 1; }
jq -e --slurpfile d "$tmp/dense.json" '
  [ .parameters as $m | range(0; $m | length) as $i
    | ($m[$i].value - $d[0].parameters[$i].value | fabs) <= 1e-6 * ($d[0].parameters[$i].error + 1e-12)
      and (if $m[$i].kind == "nuisance" then $m[$i].error == null
           else (($m[$i].error - $d[0].parameters[$i].error) | fabs) <= 1e-6 * $d[0].parameters[$i].error end)
  ] | all' "$tmp/mf.json" >/dev/null || { echo "FAIL: matrix-free differs from dense"; exit 1; }
echo ok
