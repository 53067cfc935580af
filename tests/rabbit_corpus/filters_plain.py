#!/usr/bin/env python3
"""filters_plain.py LEPUS FIXTURE_DIR WORKDIR: the fit of the compressed rabbit-layout fixtures
(tests/data/rabbit_filters, written by h5wasm with the real filter plugins; ctest fixture
rabbit_filters_files) against the independent reference.

cli.rabbit_filters shows that every compressed file gives exactly what the uncompressed
plain.hdf5 gives; this closes the loop: reference.py (numpy/scipy, h5py) fits plain.hdf5 (h5py
cannot read Blosc2, Zstd or Bitshuffle, so the reference reads the uncompressed copy only; the
fixtures hold the same arrays, checked by make_fixtures.mjs), and `lepus fit --impacts` of
plain.hdf5 and of every file of MANIFEST.txt must agree with it within run_corpus.py's
tolerances (values, errors, NLL, nominal impacts; the fixtures have no groups, and their
unconstrained systematic is not first in hsysts, so the reference has no stat impacts). The
options are the defaults of both: Poisson, BB-lite gamma, mu = x, observed data; the systematic
type comes from the file (no `meta` group: log_normal).
Exit 0 = every file agrees; 1 otherwise (also with fewer than 20 compressed files or none with
Blosc2, the filter rabbit writes).
"""

import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from run_corpus import compare_fit  # noqa: E402


def main():
    lepus, fixtures, work = sys.argv[1:4]
    os.makedirs(work, exist_ok=True)
    manifest = os.path.join(fixtures, "MANIFEST.txt")
    if not os.path.isfile(manifest):
        print(f"FAIL: {manifest} missing (fixture rabbit_filters_files)")
        return 1
    with open(manifest) as f:
        entries = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    files = [e[0] for e in entries]
    if files[:1] != ["plain.hdf5"]:
        print(f"FAIL: MANIFEST.txt does not start with plain.hdf5: {files[:1]}")
        return 1
    compressed = entries[1:]
    if len(compressed) < 20 or not any(e[1] == "32026" for e in compressed):
        print(f"FAIL: {len(compressed)} compressed files, Blosc2 (32026) among them: "
              f"{any(e[1] == '32026' for e in compressed)}")
        return 1

    ref_json = os.path.join(work, "reference.json")
    cmd = [sys.executable, os.path.join(HERE, "reference.py"), os.path.join(fixtures, files[0]),
           "--impacts", "--json", ref_json]
    print("+", " ".join(cmd))
    if subprocess.run(cmd).returncode != 0:
        print("FAIL: reference.py failed on plain.hdf5")
        return 1
    with open(ref_json) as f:
        exp = json.load(f)
    print(f"reference: {len(exp['parameters'])} parameters, nll {exp['nll']!r}, "
          f"edm {exp['edm']:.1e}")

    failures = 0
    for e in entries:
        name, what = e[0], (e[2] if len(e) > 2 else "")
        out = os.path.join(work, name + ".json")
        if os.path.exists(out):
            os.remove(out)
        cmd = [lepus, "fit", os.path.join(fixtures, name), "--threads", "1", "--json", out,
               "--edm-tol", "1e-14", "--impacts"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not os.path.exists(out):
            print("+", " ".join(cmd))
            print(proc.stderr[-2000:])
            print(f"FAIL {name}: lepus exited with {proc.returncode}")
            failures += 1
            continue
        with open(out) as f:
            bad = compare_fit(json.load(f), exp)
        if bad:
            print(f"FAIL {name} ({what}):")
            for b in bad:
                print("  " + b)
            failures += 1
        else:
            print(f"ok {name} ({what})")
    if failures:
        print(f"FAIL: {failures} of {len(entries)} files disagree with the reference")
        return 1
    print(f"ok: plain.hdf5 and {len(compressed)} compressed files agree with the reference")
    return 0


if __name__ == "__main__":
    sys.exit(main())
