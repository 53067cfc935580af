#!/usr/bin/env bash
# seeds_test.sh LEPUS INPUT TMPDIR: seeds of 2^63 and above are used and recorded bit for bit
# (signed parsing once clamped them to 2^63 - 1, so different seeds gave the same
# ensemble):
#  * generate: seeds 2^63 and 2^63 + 1 give different events; the event files' `seed` attribute
#    (H5T_STD_U64LE) holds each seed exactly; 2^64 - 1 is accepted and recorded;
#  * toys: seeds 2^63 and 2^63 + 1 give different ensembles; the JSON `seed` is the exact unsigned
#    integer and the HDF5 root attribute `seed` is H5T_STD_U64LE with the exact value;
#  * leading zeros are decimal: `-n 010 --seed 010` means 10 events with seed 10.
set -euo pipefail
lepus=$1 input=$2 tmp=$3
rm -rf "$tmp"
mkdir -p "$tmp"
source "$(dirname "${BASH_SOURCE[0]}")/../shell_lib.sh"
s0=9223372036854775808   # 2^63
s1=9223372036854775809   # 2^63 + 1
smax=18446744073709551615  # 2^64 - 1

# attr FILE NAME: the attribute's type line and value of h5dump.
attr() { h5dump -a "/$2" "$1" 2>/dev/null; }

for s in $s0 $s1 $smax; do
  "$lepus" generate -p wplus -n 3000 --seed "$s" -o "$tmp/ev_$s.h5" 2> "$tmp/gen_$s.log" \
    || { cat "$tmp/gen_$s.log"; fail "generate --seed $s"; }
  grep -q "seed $s" "$tmp/gen_$s.log" || fail "generate does not report seed $s"
  a=$(attr "$tmp/ev_$s.h5" seed)
  grep -q "H5T_STD_U64LE" <<< "$a" || fail "event-file seed attribute is not H5T_STD_U64LE: $a"
  grep -q "(0): $s\$" <<< "$a" || fail "event-file seed attribute is not $s: $a"
done
col() { h5dump -d "/events/$2" "$1" 2>/dev/null | tail -n +2 | md5sum; }
[[ "$(col "$tmp/ev_$s0.h5" mu0_pt)" != "$(col "$tmp/ev_$s1.h5" mu0_pt)" ]] \
  || fail "generate: seeds $s0 and $s1 give identical events"
[[ "$(col "$tmp/ev_$s1.h5" mu0_pt)" != "$(col "$tmp/ev_$smax.h5" mu0_pt)" ]] \
  || fail "generate: seeds $s1 and $smax give identical events"

# Leading zeros are decimal (CLI11 alone reads "010" as octal 8): 10 events, seed 10.
"$lepus" generate -p wplus -n 010 --seed 010 -o "$tmp/ev_010.h5" 2> "$tmp/gen_010.log" \
  || { cat "$tmp/gen_010.log"; fail "generate -n 010 --seed 010"; }
grep -q "seed 10, .* 10 events to generate" "$tmp/gen_010.log" \
  || { cat "$tmp/gen_010.log"; fail "-n 010 --seed 010 not read as 10 and 10"; }
grep -q "(0): 10\$" <<< "$(attr "$tmp/ev_010.h5" seed)" || fail "seed 010 not recorded as 10"

for s in $s0 $s1; do
  "$lepus" toys "$input" --no-bbstat -n 5 --seed "$s" --json "$tmp/toys_$s.json" \
    -o "$tmp/toys_$s.h5" 2> "$tmp/toys_$s.log" || { cat "$tmp/toys_$s.log"; fail "toys --seed $s"; }
  # The raw text: jq may round integers above 2^53.
  grep -Eq "\"seed\": ?$s[,}]" "$tmp/toys_$s.json" || fail "toys JSON seed is not $s"
  a=$(attr "$tmp/toys_$s.h5" seed)
  grep -q "H5T_STD_U64LE" <<< "$a" || fail "toys HDF5 seed attribute is not H5T_STD_U64LE: $a"
  grep -q "(0): $s\$" <<< "$a" || fail "toys HDF5 seed attribute is not $s: $a"
done
pulls() { jq -c '[.pulls[] | .mean, .width, .bias]' "$1"; }
[[ "$(pulls "$tmp/toys_$s0.json")" != "$(pulls "$tmp/toys_$s1.json")" ]] \
  || fail "toys: seeds $s0 and $s1 give identical ensembles"
echo ok
