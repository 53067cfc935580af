#!/usr/bin/env bash
# `cmake --install` of the Python component into a temporary prefix: the package lands in
# <prefix>/<LEPUS_PYTHON_INSTALL_DIR>/lepus and imports from there (without the build tree).
# Usage: install_test.sh BUILD_DIR PYTHON3 INSTALL_DIR(relative or absolute) WORK_DIR
set -euo pipefail
build=$1 python=$2 dest=$3 work=$4
rm -rf "$work" && mkdir -p "$work"
cmake --install "$build" --prefix "$work/prefix" --component python >/dev/null
[[ "$dest" = /* ]] && site=$dest || site=$work/prefix/$dest
test -f "$site/lepus/__init__.py"
ls "$site"/lepus/_lepus*.so >/dev/null
cd "$work"
PYTHONPATH=$site "$python" - "$site" <<'PY'
import os, sys
import numpy as np
import lepus
site = sys.argv[1]
assert os.path.realpath(lepus.__file__).startswith(os.path.realpath(site)), lepus.__file__
m = lepus.Model.from_arrays(norm=np.full((3, 1), 10.0), logk=np.zeros((3, 1, 0)), data=[9.0, 11.0, 10.0],
                            processes=["sig"], systematics=[], signals=["sig"])
r = m.fit(threads=1)
assert r.ok and abs(r.values[0] - 1.0) < 1e-9, r
print("installed lepus", lepus.__version__, "at", os.path.dirname(lepus.__file__), "fits")
PY
