#!/usr/bin/env bash
# outputs_test.sh LEPUS INPUT TMPDIR: the output rules of docs/reliability.md, through the real
# command: outputs never replace an input (same path, symbolic link, hard link), two outputs of
# one command never name one file, non-regular targets and missing or unwritable directories are
# refused before any work (exit 1, message naming the flag and the path), an output symbolic link
# is written through, JSON is replaced atomically (concurrent writers leave valid JSON; a full
# disk keeps the previous file), and temporaries are removed on SIGTERM / SIGINT.
set -uo pipefail
lepus=$1 src=$2 tmp=$3
rm -rf "$tmp"
mkdir -p "$tmp"
in="$tmp/in.h5"
cp "$src" "$in"
sum_in=$(md5sum <"$in")
fails=0

# expect CODE REGEX -- command...: exit code and stderr.
expect() {
  local want=$1 regex=$2
  shift 3
  "$@" >"$tmp/out" 2>"$tmp/err"
  local got=$?
  if [[ $got -ne $want ]] || ! grep -Eq -- "$regex" "$tmp/err"; then
    echo "FAIL: $* -> exit $got (want $want), stderr:"; cat "$tmp/err"
    echo "      (wanted /$regex/)"
    fails=$((fails + 1))
  else
    echo "ok: $* -> $got, /$regex/"
  fi
  # Refusals happen before any work: no fit report (except for write errors, which happen at
  # the end: late=1).
  if [[ $want -eq 1 && ${late:-0} -eq 0 ]] && grep -q "fit status" "$tmp/err"; then
    echo "FAIL: $* ran the fit before refusing its output"; fails=$((fails + 1))
  fi
}
no_temporaries() {
  local left
  left=$(find "$@" -name '*.lepus-tmp-*' 2>/dev/null)
  if [[ -n "$left" ]]; then echo "FAIL: temporaries left: $left"; fails=$((fails + 1)); fi
}

# ---- outputs that are inputs
expect 1 "-o $in is the same file as the input $in" -- "$lepus" fit "$in" -o "$in"
expect 1 "--json $in is the same file as the input" -- "$lepus" fit "$in" --json "$in"
expect 1 "is the same file as the input" -- "$lepus" scan "$in" --param sig --points 3 -o "$in"
expect 1 "is the same file as the input" -- "$lepus" toys "$in" -n 2 --json "$in"
ln -s in.h5 "$tmp/sym.h5"
expect 1 "sym.h5 \(a symbolic link to .*in.h5\) is the same file as the input" -- \
  "$lepus" fit "$in" -o "$tmp/sym.h5"
ln "$in" "$tmp/hard.h5"
expect 1 "hard.h5 is the same file as the input" -- "$lepus" fit "$in" --json "$tmp/hard.h5"
mkdir -p "$tmp/sub"
expect 1 "is the same file as the input" -- "$lepus" fit "$in" -o "$tmp/sub/../in.h5"
[[ "$(md5sum <"$in")" == "$sum_in" ]] || { echo "FAIL: the input changed"; fails=$((fails + 1)); }

# ---- two outputs on one file; stdout for HDF5
expect 1 "-o $tmp/r.h5: the same file is also the output of --json $tmp/r.h5" -- \
  "$lepus" fit "$in" --json "$tmp/r.h5" -o "$tmp/r.h5"
expect 1 "-o -: this output is an HDF5 file and cannot go to standard output" -- \
  "$lepus" fit "$in" -o -

# ---- targets that are not regular files, directories that do not exist or are not writable
expect 1 "-o $tmp/sub: exists and is a directory" -- "$lepus" fit "$in" -o "$tmp/sub"
mkfifo "$tmp/fifo"
expect 1 "--json $tmp/fifo: exists and is a FIFO" -- "$lepus" fit "$in" --json "$tmp/fifo"
expect 1 "--json /dev/null: exists and is a character device" -- "$lepus" fit "$in" --json /dev/null
expect 1 "directory $tmp/nodir does not exist" -- "$lepus" fit "$in" -o "$tmp/nodir/r.h5"
expect 1 "directory $tmp/nodir does not exist" -- "$lepus" generate -p wmunu -n 10 -o "$tmp/nodir/e.h5"
expect 1 "cannot create files in directory /sys" -- "$lepus" fit "$in" --json /sys/lepus.json
ln -s "loop2" "$tmp/loop1"; ln -s "loop1" "$tmp/loop2"
expect 1 "too many levels of symbolic links" -- "$lepus" fit "$in" --json "$tmp/loop1"
no_temporaries "$tmp" /sys

# ---- an output link is written through; the link stays
mkdir -p "$tmp/real"
echo old >"$tmp/real/res.json"
ln -s real/res.json "$tmp/link.json"
expect 0 "" -- "$lepus" fit "$in" --json "$tmp/link.json"
[[ -L "$tmp/link.json" ]] || { echo "FAIL: the link was replaced"; fails=$((fails + 1)); }
jq -e '.status' "$tmp/real/res.json" >/dev/null || { echo "FAIL: link target not written"; fails=$((fails + 1)); }

# ---- concurrent writers of one JSON file: the result is one of them, valid
for i in 1 2 3; do "$lepus" fit "$in" --json "$tmp/same.json" 2>/dev/null & done
wait
jq -e '.status' "$tmp/same.json" >/dev/null || { echo "FAIL: concurrent writers left invalid JSON"; fails=$((fails + 1)); }
no_temporaries "$tmp"

# ---- a full disk: the previous file survives, the message names the file and the OS reason
mnt="$tmp/full"
mkdir -p "$mnt"
if mount -t tmpfs -o size=256k tmpfs "$mnt" 2>/dev/null; then
  echo '{"previous": true}' >"$mnt/res.json"
  dd if=/dev/zero of="$mnt/filler" bs=4k 2>/dev/null  # fills the file system
  late=1
  expect 1 "$mnt/res.json: write failed \(No space left on device\)" -- \
    "$lepus" fit "$in" --json "$mnt/res.json"
  grep -q previous "$mnt/res.json" || { echo "FAIL: the previous JSON was destroyed"; fails=$((fails + 1)); }
  expect 1 "$mnt/res.h5: .*No space left on device" -- "$lepus" fit "$in" -o "$mnt/res.h5"
  late=0
  [[ ! -e "$mnt/res.h5" ]] || { echo "FAIL: a half-written HDF5 file is in place"; fails=$((fails + 1)); }
  no_temporaries "$mnt"
  umount "$mnt"
else
  echo "note: cannot mount a tmpfs here (not root?): the full-disk case is not exercised"
fi

# ---- signals: the temporary of a long write is removed, the old file stays
set -m  # job control: background jobs keep SIGINT (non-interactive shells ignore it otherwise)
for sig in TERM INT; do
  echo previous >"$tmp/events.h5"
  # (--no-resource-check: the run is killed long before the file would need the disk estimate)
  "$lepus" generate -p wmunu -n 50000000 --threads 1 --no-resource-check -o "$tmp/events.h5" \
    2>"$tmp/gen.err" &
  pid=$!
  for _ in $(seq 1 200); do
    compgen -G "$tmp/.events.h5.lepus-tmp-*" >/dev/null && break
    sleep 0.05
  done
  compgen -G "$tmp/.events.h5.lepus-tmp-*" >/dev/null || { echo "FAIL: no temporary seen"; cat "$tmp/gen.err"; fails=$((fails + 1)); }
  kill -"$sig" "$pid"
  wait "$pid"
  code=$?
  want=$((128 + $(kill -l "$sig")))
  if [[ $code -ne $want ]]; then echo "FAIL: SIG$sig: exit $code, want $want (killed by the signal)"; fails=$((fails + 1)); fi
  [[ "$(cat "$tmp/events.h5")" == previous ]] || { echo "FAIL: SIG$sig replaced the old file"; fails=$((fails + 1)); }
  no_temporaries "$tmp"
  echo "ok: SIG$sig: exit $code, temporary removed, old file kept"
done
set +m

if [[ $fails -ne 0 ]]; then echo "$fails failure(s)"; exit 1; fi
echo "all output checks passed"
