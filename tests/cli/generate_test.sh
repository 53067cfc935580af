#!/usr/bin/env bash
# generate_test.sh LEPUS TMPDIR: `lepus generate` writes an event file, reports a summary, and
# gives identical files at 1 and 2 threads; `inspect`-like checks with h5dump when available.
set -euo pipefail
lepus=$1 tmp=$2
mkdir -p "$tmp"
"$lepus" generate -p wplus,zmumu -n 20000 --seed 3 --threads 1 -o "$tmp/ev1.h5" 2> "$tmp/gen1.log"
"$lepus" generate -p wplus,zmumu -n 20000 --seed 3 --threads 2 -o "$tmp/ev2.h5" 2> "$tmp/gen2.log"
grep -q "wplus" "$tmp/gen1.log" || { echo "FAIL: no per-process summary"; cat "$tmp/gen1.log"; exit 1; }
[ -s "$tmp/ev1.h5" ] || { echo "FAIL: no event file"; exit 1; }
if command -v h5dump >/dev/null 2>&1; then
  # the data of every column must be identical (the files may differ in metadata such as times)
  for col in event_number mu0_pt mu0_eta met_pt v_mass; do
    a=$(h5dump -d "/events/$col" "$tmp/ev1.h5" 2>/dev/null | tail -n +2 | md5sum)
    b=$(h5dump -d "/events/$col" "$tmp/ev2.h5" 2>/dev/null | tail -n +2 | md5sum)
    [ "$a" = "$b" ] || { echo "FAIL: column $col differs between 1 and 2 threads"; exit 1; }
  done
fi
echo ok
