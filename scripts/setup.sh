#!/usr/bin/env bash
# Prepares a fresh Debian 12 machine and builds lepus (Release) in ./build.
#   * installs the missing build dependencies only (checked one by one with dpkg-query; apt-get
#     update runs only when something is missing);
#   * configures with CMake and builds with all cores.
# Needs root (or sudo) only when a package is missing. Idempotent: a second run only rebuilds
# what changed. Environment: LEPUS_BUILD_DIR (default build), LEPUS_BUILD_TYPE (default Release).
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  cmake make g++ pkg-config        # toolchain
  libeigen3-dev libceres-dev libhdf5-dev libtbb-dev nlohmann-json3-dev libcli11-dev
  librandom123-dev libboost-dev   # counter-based RNG (generator); Boost.Histogram (producers)
  doctest-dev libbenchmark-dev     # tests and benchmarks
  ccache hdf5-tools jq             # faster rebuilds; h5dump/h5ls; JSON checks in tests/cli
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  if [[ "$status" != "install ok installed" ]]; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} > 0)); then
  echo "setup: installing missing packages: ${missing[*]}"
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
      sudo=(sudo)
    else
      echo "setup: error: packages missing (${missing[*]}) and not root; install them or run as root" >&2
      exit 1
    fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
else
  echo "setup: all ${#PACKAGES[@]} packages present"
fi

build_dir=${LEPUS_BUILD_DIR:-build}
build_type=${LEPUS_BUILD_TYPE:-Release}
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE="$build_type"
cmake --build "$build_dir" -j"$(nproc)"
