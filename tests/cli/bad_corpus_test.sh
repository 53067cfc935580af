#!/usr/bin/env bash
# bad_corpus_test.sh LEPUS CORPUS_DIR WORK_DIR: runs every case of CORPUS_DIR/MANIFEST.tsv
# (tests/data/bad: malformed fit inputs, configurations, calibration and event files) through the
# real command and checks, for each: the exit code, that stderr contains the expected message
# (a fixed string that names the file and the dataset / key / column), that nothing crashed
# (no "internal error", no sanitizer report) and that no output file was left behind.
#
# MANIFEST.tsv: one case per line, tab-separated: FILE, EXIT, EXPECTED, COMMAND. In COMMAND,
# {} is the corpus file and {out} a fresh output path; commands run in CORPUS_DIR, so files
# name each other by relative paths. '#' starts a comment line.
set -uo pipefail
lepus=$1 corpus=$2 work=$3
rm -rf "$work"
mkdir -p "$work"
cd "$corpus" || exit 1
fails=0 cases=0
while IFS=$'\t' read -r file code expected command; do
  [[ -z "$file" || "$file" == \#* ]] && continue
  cases=$((cases + 1))
  [[ -e "$file" ]] || { echo "FAIL: $file: listed in MANIFEST.tsv but missing"; fails=$((fails + 1)); continue; }
  out="$work/out-$cases"
  cmd=${command//\{out\}/$out}
  cmd=${cmd//\{\}/$file}
  # shellcheck disable=SC2086  # the command is split on spaces (no case has spaces in a word)
  "$lepus" $cmd >"$work/stdout" 2>"$work/stderr"
  got=$?
  problem=""
  [[ $got -eq $code ]] || problem="exit code $got, expected $code"
  grep -qF -- "$expected" "$work/stderr" || problem="${problem:+$problem; }message does not contain: $expected"
  grep -qE "internal error|AddressSanitizer|runtime error:" "$work/stderr" && problem="${problem:+$problem; }crashed"
  compgen -G "$out*" >/dev/null && problem="${problem:+$problem; }an output was written"
  if [[ -n "$problem" ]]; then
    echo "FAIL: $file: lepus $cmd: $problem"
    sed 's/^/    /' "$work/stderr" | head -c 3000
    fails=$((fails + 1))
  else
    echo "ok: $file ($(head -n 1 "$work/stderr" | cut -c1-150))"
  fi
done <MANIFEST.tsv
if ((cases < 40)); then echo "FAIL: only $cases cases (the corpus promises at least 40)"; fails=$((fails + 1)); fi
echo "$cases cases, $fails failure(s)"
((fails == 0))
