#!/usr/bin/env bash
# hypotest_test.sh LEPUS INPUT TMPDIR: `lepus hypotest` and `lepus limit` on a conformance input.
#  * hypotest (qtilde, asymptotics): exit 0, the table on stderr, JSON with poi_value, test_stat,
#    cls_obs, cls_exp (five numbers, -2 sigma first: ascending), clsb_obs, clb_obs, and
#    CLs = CLs+b / CLb;
#  * q0: the discovery p-value and its significance; tmu: the p-value only (cls_obs null);
#  * toys: progress on stderr, the same JSON at 1 and 2 threads, another seed differs;
#  * limit: observed and five expected limits (ascending), CLs = 1 - CL at the observed limit
#    (checked with hypotest), --scan rows; --cl 0.9 gives a lower limit.
set -euo pipefail
lepus=$1 input=$2 tmp=$3
mkdir -p "$tmp"
source "$(dirname "${BASH_SOURCE[0]}")/../shell_lib.sh"
common=(--no-bbstat)

"$lepus" hypotest "$input" "${common[@]}" --poi-value 1.2 --json "$tmp/h.json" 2>"$tmp/err.txt" \
  || { cat "$tmp/err.txt"; fail "exit code (hypotest)"; }
for word in "hypothesis test of sig = 1.2 (qtilde, asymptotics)" "CLs+b" "expected CLs"; do
  grep -qF "$word" "$tmp/err.txt" || { cat "$tmp/err.txt"; fail "stderr lacks '$word'"; }
done
jq -e '.kind == "hypotest" and .poi == "sig" and .poi_value == 1.2 and .test_stat == "qtilde"
       and .calculator == "asymptotics" and .status == "ok"
       and (.cls_obs | type) == "number" and .cls_obs > 0 and .cls_obs <= 1
       and (.clsb_obs | type) == "number" and (.clb_obs | type) == "number"
       and ((.cls_obs - .clsb_obs / .clb_obs) | fabs) < 1e-12
       and (.cls_exp | length == 5) and .cls_exp[0] <= .cls_exp[2] and .cls_exp[2] <= .cls_exp[4]
       and (.expected_sigmas == [-2, -1, 0, 1, 2]) and .q_obs >= 0 and .q_asimov > 0
       and (.mu_hat | type) == "number"' "$tmp/h.json" >/dev/null || fail "hypotest JSON: $(jq -c . "$tmp/h.json")"

"$lepus" hypotest "$input" "${common[@]}" --test-stat q0 --json "$tmp/q0.json" 2>/dev/null || fail "exit code (q0)"
jq -e '.test_stat == "q0" and .poi_value == 0 and .p_value < 1e-6 and .significance > 5' "$tmp/q0.json" >/dev/null \
  || fail "q0 JSON: $(jq -c . "$tmp/q0.json")"
"$lepus" hypotest "$input" "${common[@]}" --test-stat tmu --poi-value 1.1 --json "$tmp/tmu.json" 2>/dev/null \
  || fail "exit code (tmu)"
jq -e '.test_stat == "tmu" and .cls_obs == null and .p_value > 0 and .p_value < 1 and .p_value == .clsb_obs' \
  "$tmp/tmu.json" >/dev/null || fail "tmu JSON: $(jq -c . "$tmp/tmu.json")"

# Toys: reproducible at any thread count.
"$lepus" hypotest "$input" "${common[@]}" --poi-value 1.2 --calc toys -n 15 --seed 4 --threads 2 \
  --json "$tmp/t2.json" 2>"$tmp/err2.txt" || { cat "$tmp/err2.txt"; fail "exit code (toys)"; }
grep -qF "hypotest toys: 30/30" "$tmp/err2.txt" || { cat "$tmp/err2.txt"; fail "no toy progress on stderr"; }
"$lepus" hypotest "$input" "${common[@]}" --poi-value 1.2 --calc toys -n 15 --seed 4 --threads 1 \
  --json "$tmp/t1.json" 2>/dev/null || fail "exit code (toys, 1 thread)"
strip='del(.command_line)'
[[ "$(jq -S "$strip" "$tmp/t1.json")" == "$(jq -S "$strip" "$tmp/t2.json")" ]] \
  || fail "toys differ between 1 and 2 threads: $(diff <(jq -S "$strip" "$tmp/t1.json") <(jq -S "$strip" "$tmp/t2.json") | head)"
jq -e '.calculator == "toys" and .ntoys == 15 and .seed == 4 and .failed_toys_sb == 0 and .failed_toys_b == 0
       and (.cls_exp | length == 5)' "$tmp/t1.json" >/dev/null || fail "toys JSON: $(jq -c . "$tmp/t1.json")"

# Limits.
"$lepus" limit "$input" "${common[@]}" --scan 1.15:1.3:4 --json "$tmp/l.json" 2>"$tmp/err3.txt" \
  || { cat "$tmp/err3.txt"; fail "exit code (limit)"; }
for word in "CLs scan of sig" "95% CL upper limit on sig" "observed"; do
  grep -qF "$word" "$tmp/err3.txt" || { cat "$tmp/err3.txt"; fail "stderr lacks '$word'"; }
done
jq -e '.kind == "limit" and .cl == 0.95 and .status == "ok" and (.observed | type) == "number"
       and (.expected | length == 5) and .expected[0] < .expected[2] and .expected[2] < .expected[4]
       and (.scan | length == 4) and .scan[0].poi_value == 1.15 and (.scan[0].cls_exp | length == 5)
       and .scan[0].cls_obs >= .scan[3].cls_obs' "$tmp/l.json" >/dev/null || fail "limit JSON: $(jq -c . "$tmp/l.json")"
obs=$(jq -r '.observed' "$tmp/l.json")
"$lepus" hypotest "$input" "${common[@]}" --poi-value "$obs" --json "$tmp/at.json" 2>/dev/null || fail "exit code (at limit)"
jq -e '((.cls_obs - 0.05) | fabs) < 1e-6' "$tmp/at.json" >/dev/null \
  || fail "CLs at the observed limit $obs is $(jq .cls_obs "$tmp/at.json"), not 0.05"
"$lepus" limit "$input" "${common[@]}" --cl 0.9 --json "$tmp/l90.json" 2>/dev/null || fail "exit code (--cl 0.9)"
jq -e --argjson o "$obs" '.cl == 0.9 and .observed < $o' "$tmp/l90.json" >/dev/null \
  || fail "--cl 0.9: $(jq -c . "$tmp/l90.json")"
echo "ok"
