#!/usr/bin/env bash
# embed_install_test.sh BUILD_DIR SOURCE_DIR WORK_DIR [INPUT]: installs the build into a
# temporary prefix, builds examples/embed against it with find_package(lepus), runs it (in-memory
# model) and, with INPUT, runs it on a file.
set -euo pipefail
build=$1 src=$2 work=$3 input=${4:-}
rm -rf "$work"
mkdir -p "$work"
cmake --install "$build" --prefix "$work/prefix" >"$work/install.log"
cmake -S "$src/examples/embed" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$work/prefix"
cmake --build "$work/build" -j2
"$work/build/lepus_embed"
if [[ -n "$input" ]]; then
  "$work/build/lepus_embed" "$input"
fi
echo "ok"
