#!/usr/bin/env bash
# rabbit_filters_test.sh LEPUS FIXTURE_DIR WORK: every compressed fit input of the rabbit filter
# fixtures (tests/data/rabbit_filters, written by h5wasm with the real plugins) must give
# exactly what its uncompressed copy plain.hdf5 gives: the `lepus inspect` report (except the
# file name and size) and the `lepus fit --json` summary (except command line, input name and
# timings). Also checks that each file's hlogk really carries its filter.
set -euo pipefail
lepus=$1 dir=$2 work=$3
mkdir -p "$work"
manifest=$dir/MANIFEST.txt
[[ -s $manifest ]] || { echo "FAIL: $manifest missing (fixture rabbit_filters_files)"; exit 1; }

normalise_inspect() { sed -e 's/[^ ]*\.hdf5//g' -e 's/^input: .*(\([^,]*\), /input: (SIZE, /' "$1"; }
run() {  # run NAME: inspect + fit of $dir/NAME into $work/NAME.{inspect,json}
  "$lepus" inspect "$dir/$1" >"$work/$1.inspect" 2>&1 \
    || { echo "FAIL: lepus inspect $1 exited $?"; cat "$work/$1.inspect"; return 1; }
  "$lepus" fit "$dir/$1" --threads 1 --json "$work/$1.json" >/dev/null 2>"$work/$1.err" \
    || { echo "FAIL: lepus fit $1 exited $?"; cat "$work/$1.err"; return 1; }
  jq -S 'del(.command_line, .input, .timings)' "$work/$1.json" >"$work/$1.cmp.json"
}

run plain.hdf5
jq -e '.status == "converged"' "$work/plain.hdf5.json" >/dev/null \
  || { echo "FAIL: the uncompressed fit did not converge"; cat "$work/plain.hdf5.err"; exit 1; }
failures=0 count=0
while IFS=$'\t' read -r file id what; do
  [[ $file == plain.hdf5 ]] && continue
  count=$((count + 1))
  if ! run "$file"; then failures=$((failures + 1)); continue; fi
  if ! h5dump -p -H -d hlogk "$dir/$file" | grep -Eq "FILTER_ID $id\b|COMPRESSION DEFLATE"; then
    echo "FAIL: $file: hlogk does not carry filter $id"; failures=$((failures + 1)); continue
  fi
  if ! diff <(normalise_inspect "$work/plain.hdf5.inspect") <(normalise_inspect "$work/$file.inspect"); then
    echo "FAIL: $file ($what): lepus inspect differs from the uncompressed copy"; failures=$((failures + 1)); continue
  fi
  if ! diff "$work/plain.hdf5.cmp.json" "$work/$file.cmp.json"; then
    echo "FAIL: $file ($what): lepus fit --json differs from the uncompressed copy"; failures=$((failures + 1)); continue
  fi
  echo "ok: $file ($what, filter $id)"
done <"$manifest"
((count >= 20)) || { echo "FAIL: only $count compressed files"; exit 1; }
((failures == 0)) || { echo "FAIL: $failures of $count files"; exit 1; }
echo "ok: $count compressed files read identically to the uncompressed copy"
