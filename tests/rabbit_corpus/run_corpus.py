#!/usr/bin/env python3
"""run_corpus.py LEPUS CORPUS_DIR CASE WORKDIR: fits one corpus file with lepus and compares
the result with CORPUS_DIR/expected.json (written by make_corpus.py from reference.py).

Tolerances (see README.md):
  values      |lepus - ref| <= 1e-6 * max(1, |ref|)  (both fits converge to EDM < 1e-18 in the
              reference, lepus's default --edm-tol 1e-8 is tightened to 1e-14 here, so the
              remaining difference is the position of the minimum, ~sqrt(2 EDM) sigma)
  errors      relative 1e-4 (the reference's Hessian is a Richardson-extrapolated central
              difference of its analytic gradient, accurate to ~1e-8 relative; 1e-4 leaves room
              for the value tolerance propagated through third derivatives)
  impacts     relative 1e-4, with an absolute floor of 1e-6 x the target's total error (impacts
              that are tiny compared with the total are differences of covariance entries)
  nll         |lepus - ref| <= 1e-6 * max(1, |ref|)
Prints every mismatch; exit 0 = agreement, 1 = mismatch or lepus failure.
"""

import json
import os
import subprocess
import sys

VALUE_TOL = 1e-6
ERROR_TOL = 1e-4
IMPACT_TOL = 1e-4
IMPACT_FLOOR = 1e-6
NLL_TOL = 1e-6


def close_abs(a, b, tol):
    return a is not None and abs(a - b) <= tol * max(1.0, abs(b))


def close_rel(a, b, tol, floor=0.0):
    return a is not None and abs(a - b) <= tol * abs(b) + floor


def main():
    lepus, corpus, case, work = sys.argv[1:5]
    with open(os.path.join(corpus, "expected.json")) as f:
        exp = json.load(f)[case]
    os.makedirs(work, exist_ok=True)
    out = os.path.join(work, f"{case}.json")
    if os.path.exists(out):
        os.remove(out)
    cmd = [lepus, "fit", os.path.join(corpus, exp["file"]), "--json", out, "--edm-tol", "1e-14",
           *exp["options"]]
    print("+", " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not os.path.exists(out):
        print(proc.stdout[-3000:])
        print(proc.stderr[-3000:])
        print(f"FAIL {case}: lepus exited with {proc.returncode}")
        return 1
    with open(out) as f:
        got = json.load(f)
    bad = []
    if got.get("status") != "converged":
        bad.append(f"status {got.get('status')}: {got.get('message')}")
    params = {p["name"]: p for p in got.get("parameters", [])}
    if [p["name"] for p in got.get("parameters", [])] != [p["name"] for p in exp["parameters"]]:
        bad.append(f"parameter names/order {list(params)} != "
                   f"{[p['name'] for p in exp['parameters']]}")
    for p in exp["parameters"]:
        g = params.get(p["name"])
        if g is None:
            continue
        if not close_abs(g.get("value"), p["value"], VALUE_TOL):
            bad.append(f"{p['name']}: value {g.get('value')!r} vs {p['value']!r}")
        if not close_rel(g.get("error"), p["error"], ERROR_TOL):
            bad.append(f"{p['name']}: error {g.get('error')!r} vs {p['error']!r}")
    if not close_abs(got.get("nll"), exp["nll"], NLL_TOL):
        bad.append(f"nll {got.get('nll')!r} vs {exp['nll']!r}")
    if "impacts" in exp:
        gi = got.get("impacts") or {}
        for t, total in exp["impacts"]["total"].items():
            floor = IMPACT_FLOOR * total
            for src, ref in exp["impacts"]["nominal"][t].items():
                v = (gi.get("nominal") or {}).get(t, {}).get(src)
                if not close_rel(v, ref, IMPACT_TOL, floor):
                    bad.append(f"impact {t} <- {src}: {v!r} vs {ref!r}")
            for grp, ref in exp["impacts"]["grouped"][t].items():
                v = (gi.get("grouped_nominal") or {}).get(t, {}).get(grp)
                if not close_rel(v, ref, IMPACT_TOL, floor):
                    bad.append(f"grouped impact {t} <- {grp}: {v!r} vs {ref!r}")
    if bad:
        print(f"FAIL {case} ({exp['covers']}):")
        for b in bad:
            print("  " + b)
        return 1
    print(f"ok {case}: {len(exp['parameters'])} parameters"
          + (", impacts" if "impacts" in exp else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
