#!/usr/bin/env bash
# ceres_test.sh LEPUS INPUT TMPDIR: --method ceres and ceres_dogleg (Ceres on deviance residuals,
# polished by exact Newton) give the dense fit's NLL, values and errors; `lepus bench --suite large
# --quick` writes its CSV (one row per method) and Markdown. No timing assertions.
set -euo pipefail
lepus=$1 input=$2 tmp=$3
mkdir -p "$tmp"
"$lepus" fit "$input" --method dense --json "$tmp/dense.json" 2>/dev/null
for m in ceres ceres_dogleg; do
  "$lepus" fit "$input" --method "$m" --json "$tmp/$m.json" 2>/dev/null
  jq -e --slurpfile d "$tmp/dense.json" '
    (.nll - $d[0].nll | fabs) <= 1e-8 and
    ([ .parameters as $m | range(0; $m | length) as $i
      | ($m[$i].value - $d[0].parameters[$i].value | fabs) <= 1e-6 * ($d[0].parameters[$i].error + 1e-12)
        and (($m[$i].error - $d[0].parameters[$i].error) | fabs) <= 1e-6 * ($d[0].parameters[$i].error + 1e-12)
    ] | all)' "$tmp/$m.json" >/dev/null || { echo "FAIL: --method $m differs from dense"; exit 1; }
done
"$lepus" bench --suite large --quick --threads 1 --tmpdir "$tmp" --csv "$tmp/large.csv" \
  --markdown "$tmp/large.md" 2> "$tmp/large.log"
expected="suite,name,method,threads,nbins,nparams,rows,nnz,gen_s,io_write_s,io_read_s,build_s,nll_grad_s,fit_s,fit_max_s,fit_cpu_s,repeats,iterations,cg_iterations,evaluations,status,covariance_s,peak_rss_mb,nll,edm,poi,poi_error,dnll_vs_ref,dpoi_over_error_vs_ref,max_abs_dx_vs_ref,note"
header=$(head -n 1 "$tmp/large.csv")
[ "$header" = "$expected" ] || { echo "FAIL: CSV header is"; echo "$header"; exit 1; }
# One point x three methods, all converged to the same minimum (NLL within 1e-8 of the first).
[ "$(tail -n +2 "$tmp/large.csv" | wc -l)" -eq 3 ] || { echo "FAIL: expected 3 rows"; cat "$tmp/large.csv"; exit 1; }
awk -F, 'NR > 1 { if ($21 != "converged" || !($14 > 0) || ($28 > 1e-8 || $28 < -1e-8)) { print "FAIL: row " NR; print; bad = 1 } }
  END { exit bad }' "$tmp/large.csv"
grep -q "| ceres_dogleg |" "$tmp/large.md" || { echo "FAIL: Markdown lacks the ceres_dogleg row"; exit 1; }
"$lepus" bench --suite large --quick --large-methods dense 2>/dev/null && { echo "FAIL: dense accepted"; exit 1; }
echo ok
