#!/usr/bin/env bash
# mpi_produce_bench.sh [LEPUS] [SIMULATED_EVENTS] [REPETITIONS] [PRESET]: the cost of MPI on one
# machine (docs/scaling.md, "Measured strong scaling"). Runs, REPETITIONS times each and
# interleaved (so that a change of machine load hits every configuration alike),
#   A  one process, --threads 2          (the two cores as threads: the reference)
#   B  mpirun -np 2, --threads 1 each    (the two cores as ranks)
#   C  one process, --threads 1
# of `lepus produce wmass --PRESET --generate SIMULATED_EVENTS`, checks that every fit input is
# the same file (h5diff), and prints per configuration the minimum and median wall time, the MPI
# overhead (B - A) / A from the minima and from the medians, the strong scaling C / B, and rank
# 0's receive time and bytes from B's summary line. Defaults: build/cli/lepus, 4000000, 3,
# light. Not a test: no pass/fail, numbers only (needs mpirun; as root it sets
# OMPI_ALLOW_RUN_AS_ROOT).
set -euo pipefail
lepus=${1:-build/cli/lepus}
events=${2:-4000000}
reps=${3:-3}
preset=${4:-light}
command -v mpirun >/dev/null || { echo "mpirun not found (Debian: openmpi-bin)"; exit 1; }
"$lepus" --version | grep -q "^mpi: .*[0-9]" || { echo "$lepus is built without MPI"; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
args=(produce wmass "--$preset" --generate "$events")

declare -A times
run() {  # run NAME COMMAND...: appends the wall time to times[NAME]
  local name=$1
  shift
  local t0 t1
  t0=$(date +%s.%N)
  "$@" -o "$tmp/$name.h5" 2>"$tmp/$name.err" || { cat "$tmp/$name.err"; exit 1; }
  t1=$(date +%s.%N)
  times[$name]+="$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}') "
}
for ((r = 1; r <= reps; r++)); do
  run A "$lepus" "${args[@]}" --threads 2
  run B mpirun -np 2 "$lepus" "${args[@]}" --threads 1
  run C "$lepus" "${args[@]}" --threads 1
  last() { local v=($1); echo "${v[-1]}"; }
  echo "repetition $r/$reps: A $(last "${times[A]}") s, B $(last "${times[B]}") s, C $(last "${times[C]}") s (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
done
for name in B C; do
  h5diff "$tmp/A.h5" "$tmp/$name.h5" >/dev/null || { echo "fit inputs differ: A and $name"; exit 1; }
done

stats() {  # min median of a list of numbers
  tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | awk '{v[NR]=$1} END {
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.3f %.3f", v[1], m}'
}
read -r a_min a_med <<<"$(stats "${times[A]}")"
read -r b_min b_med <<<"$(stats "${times[B]}")"
read -r c_min c_med <<<"$(stats "${times[C]}")"
echo "lepus produce wmass --$preset --generate $events, $reps repetitions ($(nproc) cores; fit inputs identical)"
printf '%-36s %9s %9s\n' configuration "min [s]" "median [s]"
printf '%-36s %9s %9s\n' "A one process, --threads 2" "$a_min" "$a_med"
printf '%-36s %9s %9s\n' "B mpirun -np 2, --threads 1" "$b_min" "$b_med"
printf '%-36s %9s %9s\n' "C one process, --threads 1" "$c_min" "$c_med"
awk -v a="$a_min" -v b="$b_min" -v am="$a_med" -v bm="$b_med" -v c="$c_min" 'BEGIN {
  printf "MPI overhead (B - A) / A: %+.1f%% (minima), %+.1f%% (medians)\n", 100 * (b - a) / a, 100 * (bm - am) / am
  printf "strong scaling C / B (minima): %.2fx\n", c / b }'
grep "rank 0 received" "$tmp/B.err" || true
