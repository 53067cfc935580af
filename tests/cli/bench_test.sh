#!/usr/bin/env bash
# bench_test.sh LEPUS TMPDIR: `lepus bench --quick` writes a CSV with the expected columns and one
# row per (model point, thread count), a Markdown table, and a progress line per point on stderr.
# No timing assertions (timings are machine-dependent; docs/performance.md has the numbers).
set -euo pipefail
lepus=$1 tmp=$2
mkdir -p "$tmp"
"$lepus" bench --quick --suite all --threads 1,2 --tmpdir "$tmp" \
  --csv "$tmp/bench.csv" --markdown "$tmp/bench.md" 2> "$tmp/bench.log"
expected="suite,name,status,note,nbins,nproc,nsyst,nparams,threads,rows,nnz,density,tensor_bytes,gen_s,io_write_s,io_read_s,file_bytes,nll_grad_s,bw_floor_s,nll_grad_x_floor,hessian_s,hessian_flops,hessian_gflops,hessian_frac_gemm,fit_s,fit_iterations,fit_status,covariance_s,impacts_s,fit_cov_impacts_s,peak_rss_mb,read_gbs,gemm_gflops"
header=$(head -n 1 "$tmp/bench.csv")
[ "$header" = "$expected" ] || { echo "FAIL: CSV header is"; echo "$header"; exit 1; }
# --quick: 1 CMS-like point + grid nbins {10, 100} x nsyst {1, 4, 16} = 7 points, x 2 thread counts.
rows=$(tail -n +2 "$tmp/bench.csv" | wc -l)
[ "$rows" -eq 14 ] || { echo "FAIL: $rows data rows, expected 14"; cat "$tmp/bench.csv"; exit 1; }
ncol=$(echo "$expected" | awk -F, '{print NF}')
awk -F, -v n="$ncol" 'NR > 1 && NF != n { print "FAIL: row " NR " has " NF " fields, expected " n; bad = 1 }
  END { exit bad }' "$tmp/bench.csv"
# Every point ran (status ok, fit converged) with positive timings, the machine limits are filled.
awk -F, 'NR > 1 {
  if ($3 != "ok" || $27 != "converged") { print "FAIL: row " NR ": status " $3 ", fit " $27; bad = 1 }
  if (!($18 > 0 && $21 > 0 && $25 > 0 && $32 > 0 && $33 > 0 && $31 > 0 && $13 > 0)) {
    print "FAIL: row " NR ": missing or non-positive measurement"; print; bad = 1 }
} END { exit bad }' "$tmp/bench.csv"
# Exactly one CMS-like point per thread count, with impacts; grid points without.
[ "$(awk -F, '$1 == "cms" && $29 > 0' "$tmp/bench.csv" | wc -l)" -eq 2 ] ||
  { echo "FAIL: expected 2 CMS-like rows with impacts"; exit 1; }
[ "$(awk -F, '$1 == "grid" && $5 == 100 && $7 == 16 && $9 == 2' "$tmp/bench.csv" | wc -l)" -eq 1 ] ||
  { echo "FAIL: no grid row 100 bins x 16 syst at 2 threads"; exit 1; }
grep -q "^| cms-quick " "$tmp/bench.md" || { echo "FAIL: Markdown table lacks the CMS-like row"; exit 1; }
grep -q "GEMM" "$tmp/bench.md" || { echo "FAIL: Markdown lacks the machine limits"; exit 1; }
[ "$(grep -c '^bench \[' "$tmp/bench.log")" -eq 14 ] ||
  { echo "FAIL: expected 14 progress lines on stderr"; cat "$tmp/bench.log"; exit 1; }
ls "$tmp"/lepus_bench_*.h5 >/dev/null 2>&1 && { echo "FAIL: temporary HDF5 file left behind"; exit 1; }
echo ok
