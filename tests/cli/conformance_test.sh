#!/usr/bin/env bash
# conformance_test.sh LEPUS CONFORMANCE_DIR FILE TMPDIR: fits one conformance file through the
# CLI with the options recorded in expected.json and compares every parameter with the
# independent reference (values to 1e-5, errors to 1e-4 relative; the reference used finite
# differences, see tests/data/conformance/README.md).
set -euo pipefail
lepus=$1 dir=$2 file=$3 tmp=$4
mkdir -p "$tmp"
mapfile -t opts < <(jq -r --arg f "$file" '.[$f].options // [] | .[]' "$dir/expected.json")
"$lepus" fit "$dir/$file" --json "$tmp/$file.json" "${opts[@]}"
jq -n --slurpfile got "$tmp/$file.json" --slurpfile exp "$dir/expected.json" --arg f "$file" '
  def close(a; b; rel): ((a - b) | fabs) <= rel * ([(a | fabs), (b | fabs), 1e-3] | max);
  ($exp[0][$f].parameters) as $ref
  | ($got[0].parameters | map({(.name): .}) | add) as $p
  | [ $ref[] | select((close($p[.name].value; .value; 1e-5) and close($p[.name].error; .error; 1e-4)) | not)
      | {name, value, error, got_value: $p[.name].value, got_error: $p[.name].error} ] as $bad
  | if ($bad | length) == 0 and close($got[0].nll; $exp[0][$f].nll; 1e-6) then "ok"
    else error("mismatch: \($bad) nll \($got[0].nll) vs \($exp[0][$f].nll)") end'
