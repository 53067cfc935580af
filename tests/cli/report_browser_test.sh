#!/usr/bin/env bash
# report_browser_test.sh LEPUS DEMO_INPUT WORKDIR PYTHON3: the fit report in a real browser.
# Debian's chromium (installed by scripts/setup.sh) loads the page of `lepus fit --report`
# headless: the screenshot is not blank (not one colour), the console has no errors, and the
# DOM after the page's script ran holds every section and the parameter table it fills in.
# Exits 77 (ctest: skipped) with a message only when no chromium is installed.
set -euo pipefail
lepus=$1 input=$2 work=$3 python=$4
browser=""
for b in chromium chromium-browser google-chrome; do
  if command -v "$b" >/dev/null 2>&1; then browser=$b; break; fi
done
if [[ -z "$browser" ]]; then
  echo "SKIP: no chromium installed (scripts/setup.sh installs Debian's chromium)"
  exit 77
fi
rm -rf "$work"
mkdir -p "$work"
source "$(dirname "${BASH_SOURCE[0]}")/../shell_lib.sh"
"$lepus" fit "$input" --report "$work/report.html" --global-impacts --threads 2 2> "$work/fit.log"
url="file://$work/report.html"
# A private profile; no sandbox as root (CI runs as root).
flags=(--headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run
       --user-data-dir="$work/profile" --enable-logging=stderr --v=0)
timeout 120 "$browser" "${flags[@]}" --window-size=1400,2400 --screenshot="$work/shot.png" "$url" \
  > "$work/shot.out" 2> "$work/shot.err" || { cat "$work/shot.err"; fail "screenshot failed"; }
timeout 120 "$browser" "${flags[@]}" --dump-dom "$url" > "$work/dom.html" 2> "$work/dom.err" \
  || { cat "$work/dom.err"; fail "--dump-dom failed"; }
# Console messages are logged as ...:INFO:CONSOLE:<line>] "message"; the page logs nothing, so any
# console line (an uncaught exception above all) is a failure.
if grep -hE 'CONSOLE[(:]|Uncaught' "$work/shot.err" "$work/dom.err"; then
  fail "console messages (above)"
fi
for id in summary pois impacts grouped distributions correlations; do
  grep -q "<section id=\"$id\"" "$work/dom.html" || fail "rendered DOM has no section $id"
done
# The script filled the parameter table (rows in #pbody) and its match count.
grep -qE '<tbody id="pbody"><tr><td>' "$work/dom.html" || fail "the parameter table was not filled in by the script"
grep -qE '<span id="pinfo" class="note">[0-9]+ of [0-9]+ parameters match' "$work/dom.html" \
  || fail "no match count in the parameter table"
"$python" - "$work/shot.png" <<'PY'
import struct, sys, zlib
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat, w, h, ctype = 8, b"", 0, 0, 0
while pos < len(data):
    n, kind = struct.unpack(">I4s", data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b"IHDR":
        w, h, depth, ctype = struct.unpack(">IIBB", body[:10])
        assert depth == 8, "bit depth %d" % depth
    elif kind == b"IDAT":
        idat += body
    pos += 12 + n
bpp = {2: 3, 6: 4, 0: 1, 4: 2}[ctype]
raw, stride, prev, colours = zlib.decompress(idat), w * bpp, bytearray(w * bpp), set()
for y in range(h):
    f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):
        a = line[i - bpp] if i >= bpp else 0
        b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + b) & 255
        elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    if y % 8 == 0:
        for x in range(0, w, 4):
            colours.add(bytes(line[x * bpp:x * bpp + 3]))
    prev = line
print(f"screenshot {w}x{h}: {len(colours)} distinct colours sampled")
if len(colours) < 20:
    sys.exit("FAIL: the screenshot is (nearly) blank")
PY
echo "ok"
