#!/usr/bin/env bash
# report_test.sh LEPUS DEMO_INPUT WORKDIR PYTHON3: `lepus report` on real fits of the analytic demo
# input (docs/report.md):
#  1. `lepus fit --report` writes a page holding every section a full fit has (summary, POIs,
#     pulls and impacts, grouped impacts, distributions, correlations), no temporary left over;
#  2. `lepus report` of the -o results with scans and toys adds those sections; --top N shows N
#     rows; --svg-dir writes every plot as a standalone, well-formed SVG (checked by Python's XML
#     parser) with no NaN in it; the page has no external reference;
#     a toys file given as results (and fit results as --toys) is refused with exit code 1; a
#     results file without the fitted data and bin edges (older lepus) takes them from --input;
#  3. a results file without extras still gives a page (summary, pulls) and says what is missing.
set -euo pipefail
lepus=$1 input=$2 work=$3 python=$4
rm -rf "$work"
mkdir -p "$work"
source "$(dirname "${BASH_SOURCE[0]}")/../shell_lib.sh"

# 1. fit --report.
"$lepus" fit "$input" --report "$work/fit.html" --threads 2 2> "$work/fit.log" \
  || { cat "$work/fit.log"; fail "fit --report exited $?"; }
grep -q "lepus: wrote the report $work/fit.html" "$work/fit.log" || fail "no 'wrote the report' line"
for id in summary pois impacts grouped distributions correlations; do
  grep -q "<section id=\"$id\"" "$work/fit.html" || fail "fit.html has no section $id"
done
for text in "Pulls and impacts" "Impacts on massShiftW100MeV" "Source of uncertainty" \
            "Post-fit: wmass, negative charge (unrolled eta × pt)" "Post-fit: wmass → pt, positive charge" \
            "Pre-fit: wmass → eta" "Correlations" "-2.2 ± 8.2 MeV"; do
  grep -qF -- "$text" "$work/fit.html" || fail "fit.html lacks '$text'"
done
leftover=$(find "$work" -name '.*' -type f | wc -l)
[[ $leftover -eq 0 ]] || fail "temporary files left: $(find "$work" -name '.*' -type f)"

# 2. lepus report with scans, toys, --top, --svg-dir.
"$lepus" fit "$input" -o "$work/fit.h5" --global-impacts --postfit --project wmass:pt \
  --threads 2 2> /dev/null
"$lepus" scan "$input" --param massShiftW100MeV --points 9 -o "$work/scan.h5" --threads 2 2> /dev/null
"$lepus" toys "$input" -n 40 --seed 3 -o "$work/toys.h5" --threads 2 2> /dev/null
"$lepus" report "$work/fit.h5" --toys "$work/toys.h5" --top 5 --svg-dir "$work/svg" \
  -o "$work/report.html" 2> "$work/report.log" || { cat "$work/report.log"; fail "report exited $?"; }
cat "$work/report.log"
for id in summary pois impacts grouped distributions correlations toys; do
  grep -q "<section id=\"$id\"" "$work/report.html" || fail "report.html has no section $id"
done
grep -q "Pulls of massShiftW100MeV" "$work/report.html" || fail "no toy pull histogram"
# --top 5: five rows in each impacts chart, two impact panels each (nominal, global): 5 x 2
# blue +1 sigma bars and the legend swatch.
n=$(grep -o 'fill="#0072B2"' "$work/svg/impacts_massShiftW100MeV.svg" | wc -l)
[[ $n -eq 11 ]] || fail "impacts chart has $n blue bars, expected 11 (top 5 x 2 panels + legend)"
nsvg=$(ls "$work/svg"/*.svg | wc -l)
[[ $nsvg -ge 20 ]] || fail "only $nsvg SVG files"
"$python" - "$work/svg" "$work/report.html" <<'PY'
import glob, re, sys, xml.etree.ElementTree as ET
svgs = glob.glob(sys.argv[1] + "/*.svg")
for f in svgs:
    text = open(f, encoding="utf-8").read()
    ET.fromstring(text.encode("utf-8"))  # well-formed XML
    for d in re.findall(r' (?:d|x|y|x1|x2|y1|y2|cx|cy|width|height)="([^"]*)"', text):
        if re.search(r"nan|inf", d, re.I):
            sys.exit(f"FAIL: {f}: non-finite coordinate {d[:80]}")
html = open(sys.argv[2], encoding="utf-8").read()
if re.search(r'(src|href)="(https?:)?//', html) or "<link" in html or "@import" in html:
    sys.exit("FAIL: the page references something outside it")
print(f"ok: {len(svgs)} SVG files well-formed and finite; the page is self-contained")
PY
"$lepus" report "$work/scan.h5" -o "$work/scan.html" 2> "$work/scan.log"
grep -q '<section id="scans"' "$work/scan.html" || fail "scan.html has no scans section"
grep -qF "Profile likelihood scan of massShiftW100MeV" "$work/scan.html" || fail "no scan plot"

# A toys file is not fit results (and the reverse): exit code 1 naming the file.
set +e
"$lepus" report "$work/toys.h5" -o "$work/toys_as_results.html" 2> "$work/err.log"; code=$?
set -e
[[ $code -eq 1 ]] || fail "report of a toys file exited $code, expected 1"
grep -q "toys.h5: attribute kind: is 'toys'" "$work/err.log" || { cat "$work/err.log"; fail "message"; }
set +e
"$lepus" report "$work/fit.h5" --toys "$work/fit.h5" -o "$work/x.html" 2> "$work/err.log"; code=$?
set -e
[[ $code -eq 1 ]] || fail "--toys with fit results exited $code, expected 1"
grep -q "fit.h5: attribute kind: is missing" "$work/err.log" || { cat "$work/err.log"; fail "message"; }
[[ ! -e "$work/toys_as_results.html" && ! -e "$work/x.html" ]] || fail "a page was written on error"

# A results file of an older lepus (no `data`, no axis edges): the data and edges come from
# --input (or the recorded input), with the same data points as before.
"$python" - "$work/fit.h5" "$work/old.h5" <<'PY'
import shutil, sys, h5py
shutil.copy(sys.argv[1], sys.argv[2])
with h5py.File(sys.argv[2], "r+") as f:
    del f["data"]
    for s in ("prefit", "postfit"):
        for ch in f[s + "/channels"].values():
            for k in [k for k in ch if k.startswith("axis_")]:
                del ch[k]
PY
"$lepus" report "$work/old.h5" -o "$work/old_noinput.html" --input /dev/null 2> "$work/old.log" && fail "--input /dev/null accepted"
"$lepus" report "$work/old.h5" -o "$work/old.html" --input "$input" 2> "$work/old.log" \
  || { cat "$work/old.log"; fail "report of an older results file with --input"; }
grep -q "not shown: data points" "$work/old.log" && fail "data points missing with --input"
grep -qF "Post-fit: wmass → pt, positive charge" "$work/old.html" || fail "no projection from the input's edges"
"$lepus" report "$work/old.h5" -o "$work/old2.html" 2> "$work/old2.log"  # the recorded input
grep -q "not shown: data points" "$work/old2.log" && fail "data points missing with the recorded input"

# 3. A bare fit: the page says what is missing.
"$lepus" fit "$input" -o "$work/bare.h5" --threads 2 2> /dev/null
"$lepus" report "$work/bare.h5" -o "$work/bare.html" 2> "$work/bare.log"
grep -q "not shown: impacts" "$work/bare.log" || fail "no note about the missing impacts"
grep -q '<section id="notes"' "$work/bare.html" || fail "bare.html has no notes section"
grep -q "Pulls of the" "$work/bare.html" || fail "bare.html has no pulls chart"
echo "ok"
