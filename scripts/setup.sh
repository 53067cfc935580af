#!/usr/bin/env bash
# Prepares a fresh Debian 12 machine and builds lepus (Release) in ./build.
#   * installs the missing build dependencies only (checked one by one with dpkg-query; apt-get
#     update runs only when something is missing);
#   * configures with CMake and builds with all cores.
# Needs root (or sudo) only when a package is missing. Idempotent: a second run only rebuilds
# what changed. Environment: LEPUS_BUILD_DIR (default build), LEPUS_BUILD_TYPE (default Release).
# LEPUS_SANITIZE=1 (`make sanitize`): also installs clang and its sanitizer/libFuzzer runtimes and
# configures the build directory with clang, -DLEPUS_SANITIZE=ON (ASan + UBSan, the fuzz targets
# of tests/fuzz), without benchmarks and the install-and-embed test (a plain g++ project cannot
# link against sanitized libraries). `make test` never sets it and never installs clang.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  cmake make g++ pkg-config        # toolchain
  libeigen3-dev libceres-dev libhdf5-dev libtbb-dev nlohmann-json3-dev libcli11-dev
  librandom123-dev libboost-dev   # counter-based RNG (generator); Boost.Histogram (producers)
  doctest-dev libbenchmark-dev     # tests and benchmarks
  ccache hdf5-tools jq             # faster rebuilds; h5dump/h5ls; JSON checks in tests/cli
  libopenmpi-dev openmpi-bin       # MPI: `mpirun -np N lepus produce|toys|scan` (docs/scaling.md)
  liblz4-dev libzstd-dev zlib1g-dev  # codecs of lepus's in-process Blosc2/Zstd/Bitshuffle decoders
  hdf5-filter-plugin hdf5-filter-plugin-blosc-serial hdf5-plugin-lzf  # HDF5 filter plugins (LZ4, BZip2, Blosc)
  python3-numpy python3-scipy python3-h5py  # tests/rabbit_corpus, cli.rabbit_impacts: independent references (/usr/bin/python3)
  python3-dev pybind11-dev python3-pytest python3-iminuit  # python/ bindings, tests/python (pytest), examples/python (iminuit)
  chromium fonts-dejavu-core      # cli.report_browser: the HTML fit report in headless chromium; the plots' font
)
sanitize=${LEPUS_SANITIZE:-0}
if [[ "$sanitize" == 1 ]]; then
  # clang 14; libclang-rt-14-dev holds the ASan/UBSan runtimes and libFuzzer (Debian 12).
  PACKAGES+=(clang libclang-rt-14-dev)
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  if [[ "$status" != "install ok installed" ]]; then
    missing+=("$pkg")
  fi
done
# Node.js and npm (tests: the filter fixtures written by h5wasm, tests/data/rabbit_filters):
# checked as commands, not as Debian packages. A machine may already have them from another
# source (e.g. a nodejs package that bundles npm and conflicts with Debian's npm); Debian's are
# installed only when a command is missing.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi

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
if [[ "$sanitize" == 1 ]]; then
  # RelWithDebInfo: NDEBUG as in the shipped build; cmake/LepusSanitize.cmake's -O1 comes later
  # on the command line and wins over -O2.
  build_type=${LEPUS_BUILD_TYPE:-RelWithDebInfo}
  cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE="$build_type" \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DLEPUS_SANITIZE=ON \
    -DLEPUS_BUILD_BENCHMARKS=OFF -DLEPUS_BUILD_EXAMPLES=OFF
else
  cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE="$build_type"
fi
cmake --build "$build_dir" -j"$(nproc)"
