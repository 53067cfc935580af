#!/usr/bin/env bash
# make_fixtures.sh SRC_DIR OUT_DIR: the ctest fixture rabbit_filters_files. Installs the pinned
# npm packages of SRC_DIR/package-lock.json (h5wasm, h5wasm-plugins) into OUT_DIR/npm with
# `npm ci` and writes the compressed fit inputs into OUT_DIR with make_fixtures.mjs. Fails
# loudly (exit 1) when node/npm are missing or the registry is unreachable: the filter tests
# must never pass by skipping.
set -euo pipefail
src=$1 out=$2
for tool in node npm; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "make_fixtures: error: '$tool' not found; the rabbit filter fixtures need node >= 16 and npm" >&2
    exit 1
  }
done
mkdir -p "$out/npm"
cp "$src/package.json" "$src/package-lock.json" "$src/make_fixtures.mjs" "$out/npm/"
cd "$out/npm"
if [[ ! -d node_modules/h5wasm-plugins ]] || ! cmp -s package-lock.json node_modules/.package-lock.json 2>/dev/null; then
  npm ci --no-audit --no-fund --loglevel=error >npm.log 2>&1 || {
    echo "make_fixtures: error: 'npm ci' failed (is the npm registry reachable?):" >&2
    tail -n 20 npm.log >&2
    exit 1
  }
fi
rm -f "$out"/*.hdf5 "$out/MANIFEST.txt"
node make_fixtures.mjs "$out"
n=$(wc -l <"$out/MANIFEST.txt")
((n >= 20)) || { echo "make_fixtures: error: only $n files in MANIFEST.txt" >&2; exit 1; }
