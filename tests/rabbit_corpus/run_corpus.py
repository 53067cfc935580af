#!/usr/bin/env python3
"""run_corpus.py LEPUS CORPUS_DIR CASE WORKDIR: fits one corpus file with lepus and compares
the result with CORPUS_DIR/expected.json (written by make_corpus.py from reference.py).

First `lepus inspect --json` must report rabbit's pickled metadata as writer.py wrote it
(expected.json `channels`, `systematic_type`, `meta_info`, `meta_filter`: the writer's own
definitions, not lepus output): metadata_format "rabbit", the channel names in order, masked
flags, bin counts, axis names and edges (|d| <= 1e-12 max(1, |edge|); a flow channel's axes have
the index edges 0..extent and one label per bin, first "underflow...", last "overflow..."), the
meta_info dict, the pickle's filter among the filters seen, and no warning mentioning the
metadata. `lepus fit` must print no such warning either (a file read without its metadata
would fall back to one channel and log-normal systematics, with a warning).

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
  post-fit yields (cases with `yields`: lepus also runs with --postfit -o WORKDIR/<case>.h5;
              postfit/total [nbinsfull], postfit/process [nbinsfull, nproc] and their _error,
              masked channels included, processes in hprocs order)
              values |d| <= 1e-6 |ref| + 1e-12 max|total|: the yields are smooth functions of
              the fitted x, so the position of the minimum moves them by ~1e-7 of their error;
              the floor is rounding only (a zero yield must stay 0); any difference in a formula
              (beta, beta variations, masks) is >= 1e-4 relative in these models
              errors |d| <= 1e-4 |ref| + 1e-6 x the bin's total error: the reference's J is a
              Richardson-extrapolated central difference (truncation O(h^4) ~ 1e-12) and its
              covariance is good to ~1e-8, so 1e-4 as for the parameter errors; the floor covers
              process errors that are tiny next to the bin's total
  extra fits  (`extra_fits`: the same file with other options) the same comparisons, and
              `expect_warning`: a lepus warning line must contain that text
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
YIELD_TOL = 1e-6
YIELD_FLOOR = 1e-12  # x max |total|
YIELD_ERROR_TOL = 1e-4
YIELD_ERROR_FLOOR = 1e-6  # x the bin's total error


def close_abs(a, b, tol):
    return a is not None and abs(a - b) <= tol * max(1.0, abs(b))


def close_rel(a, b, tol, floor=0.0):
    return a is not None and abs(a - b) <= tol * abs(b) + floor


EDGE_TOL = 1e-12


def meta_warnings(lines):
    return [w for w in lines if "meta" in w.lower()]


def check_inspect(lepus, path, exp, bad):
    """lepus inspect --json against what writer.py put in the pickled meta."""
    cmd = [lepus, "inspect", "--json", path]
    print("+", " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        bad.append(f"lepus inspect exited with {proc.returncode}: {proc.stderr[-2000:]}")
        return
    try:
        got = json.loads(proc.stdout)
    except json.JSONDecodeError as e:
        bad.append(f"lepus inspect --json: not JSON ({e})")
        return
    if got.get("metadata_format") != "rabbit":
        bad.append(f"inspect: metadata_format {got.get('metadata_format')!r}, not 'rabbit'")
    if got.get("systematic_type") != exp["systematic_type"]:
        bad.append(f"inspect: systematic_type {got.get('systematic_type')!r} vs "
                   f"{exp['systematic_type']!r}")
    if got.get("meta_info") != exp["meta_info"]:
        bad.append(f"inspect: meta_info {got.get('meta_info')!r} vs {exp['meta_info']!r}")
    filt = {"blosc": "blosc", "gzip": "gzip"}.get(exp.get("meta_filter"))
    if filt and filt not in got.get("filters", []):
        bad.append(f"inspect: filters {got.get('filters')} lack {filt} (meta/pickle_data)")
    for w in meta_warnings(got.get("warnings", [])):
        bad.append(f"inspect: warning about the metadata: {w}")
    gch, ech = got.get("channels", []), exp["channels"]
    if [c.get("name") for c in gch] != [c["name"] for c in ech]:
        bad.append(f"inspect: channels {[c.get('name') for c in gch]} vs "
                   f"{[c['name'] for c in ech]}")
        return
    for g, e in zip(gch, ech):
        where = f"inspect: channel {e['name']}"
        if g.get("masked") is not e["masked"]:
            bad.append(f"{where}: masked {g.get('masked')!r} vs {e['masked']!r}")
        if g.get("bins") != e["nbins"]:
            bad.append(f"{where}: bins {g.get('bins')!r} vs {e['nbins']}")
        gax = g.get("axes", [])
        if [a.get("name") for a in gax] != [a["name"] for a in e["axes"]]:
            bad.append(f"{where}: axes {[a.get('name') for a in gax]} vs "
                       f"{[a['name'] for a in e['axes']]}")
            continue
        for ga, ea in zip(gax, e["axes"]):
            edges = ga.get("edges") or []
            if len(edges) != len(ea["edges"]) or any(
                    abs(x - y) > EDGE_TOL * max(1.0, abs(y)) for x, y in zip(edges, ea["edges"])):
                bad.append(f"{where}: axis {ea['name']}: edges {edges} vs {ea['edges']}")
            if "flow_labels" in ea:
                labels = ga.get("labels") or []
                if (len(labels) != ea["flow_labels"] or not labels[0].startswith("underflow")
                        or not labels[-1].startswith("overflow")):
                    bad.append(f"{where}: axis {ea['name']}: flow labels {labels}")
            elif "labels" in ga:
                bad.append(f"{where}: axis {ea['name']}: unexpected labels {ga['labels']}")


def compare_fit(got, exp):
    """lepus fit --json (got) against a reference result (exp: parameters, nll, impacts):
    the list of mismatches."""
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
    return bad


def compare_yields(h5path, exp):
    """postfit/* of lepus's results file against the reference's `yields`."""
    import h5py
    import numpy as np
    bad = []
    try:
        with h5py.File(h5path, "r") as f:
            got = {k: np.asarray(f["postfit"][k][...]) for k in
                   ("total", "total_error", "process", "process_error")}
            procs = [p.decode() if isinstance(p, bytes) else str(p)
                     for p in f["postfit"]["processes"][...]] \
                if "processes" in f["postfit"] else None
    except (OSError, KeyError) as e:
        return [f"post-fit yields: cannot read {h5path}: {e}"]
    if procs is not None and procs != exp["processes"]:
        bad.append(f"post-fit processes {procs} vs {exp['processes']}")
    ref = {k: np.asarray(exp[k], dtype=float) for k in
           ("total", "total_error", "process", "process_error")}
    for k in ref:
        if got[k].shape != ref[k].shape:
            bad.append(f"postfit/{k}: shape {got[k].shape} vs {ref[k].shape}")
    if bad:
        return bad
    scale = float(np.max(np.abs(ref["total"])))
    terr = ref["total_error"]
    checks = (("total", YIELD_TOL * np.abs(ref["total"]) + YIELD_FLOOR * scale),
              ("process", YIELD_TOL * np.abs(ref["process"]) + YIELD_FLOOR * scale),
              ("total_error", YIELD_ERROR_TOL * terr + YIELD_ERROR_FLOOR * terr),
              ("process_error", YIELD_ERROR_TOL * np.abs(ref["process_error"])
               + YIELD_ERROR_FLOOR * terr[:, None]))
    for k, tol in checks:
        d = np.abs(got[k] - ref[k])
        ok = d <= tol
        if not np.all(ok):
            for idx in np.argwhere(~ok)[:10]:
                i = tuple(int(j) for j in idx)
                where = f"bin {i[0]}" + (f", {exp['processes'][i[1]]}" if len(i) > 1 else "")
                bad.append(f"postfit/{k} [{where}]: {got[k][i]!r} vs {ref[k][i]!r}")
            if np.count_nonzero(~ok) > 10:
                bad.append(f"postfit/{k}: {np.count_nonzero(~ok)} mismatches in all")
        rel = np.max(d / np.maximum(np.abs(ref[k]), 1e-300))
        print(f"  postfit/{k}: max |d| {np.max(d):.3g}, max relative {rel:.3g}")
    return bad


def run_fit(lepus, path, options, out, h5out=None):
    """One `lepus fit` (JSON to out, with h5out also --postfit -o h5out)."""
    for f in (out, h5out):
        if f and os.path.exists(f):
            os.remove(f)
    cmd = [lepus, "fit", path, "--json", out, "--edm-tol", "1e-14", *options]
    if h5out:
        cmd += ["--postfit", "-o", h5out]
    print("+", " ".join(cmd))
    return subprocess.run(cmd, capture_output=True, text=True)


def check_extra_fit(lepus, path, xf, out, h5out):
    """A further fit of the same file (expected.json `extra_fits` entry): its mismatches."""
    label = f"[{' '.join(xf['options']) or 'default options'}]"
    proc = run_fit(lepus, path, xf["options"], out, h5out if "yields" in xf else None)
    if proc.returncode != 0 or not os.path.exists(out):
        print(proc.stderr[-3000:])
        return [f"{label} lepus exited with {proc.returncode}"]
    with open(out) as f:
        got = json.load(f)
    warnings = [line for line in proc.stderr.splitlines() if "warning" in line]
    bad = [f"lepus fit: warning about the metadata: {w}" for w in meta_warnings(warnings)]
    if "expect_warning" in xf and not any(xf["expect_warning"] in w for w in warnings):
        bad.append(f"no warning mentioning {xf['expect_warning']!r} (warnings: {warnings})")
    bad += compare_fit(got, xf)
    if "yields" in xf:
        bad += compare_yields(h5out, xf["yields"])
    return [f"{label} {b}" for b in bad]


def main():
    lepus, corpus, case, work = sys.argv[1:5]
    with open(os.path.join(corpus, "expected.json")) as f:
        exp = json.load(f)[case]
    os.makedirs(work, exist_ok=True)
    bad = []
    check_inspect(lepus, os.path.join(corpus, exp["file"]), exp, bad)
    path = os.path.join(corpus, exp["file"])
    out = os.path.join(work, f"{case}.json")
    h5out = os.path.join(work, f"{case}.h5") if "yields" in exp else None
    proc = run_fit(lepus, path, exp["options"], out, h5out)
    if "lepus_refuses" in exp:
        # Not supported yet: lepus must refuse with exit code 1 and the expected message, and
        # write nothing.
        if proc.returncode != 1 or exp["lepus_refuses"] not in proc.stderr or os.path.exists(out):
            print(proc.stderr[-3000:])
            print(f"FAIL {case}: expected lepus to refuse with exit code 1 and "
                  f"'{exp['lepus_refuses']}', got exit code {proc.returncode}")
            return 1
        if bad:
            print(f"FAIL {case} ({exp['covers']}):")
            for b in bad:
                print("  " + b)
            return 1
        print(f"ok {case}: refused as expected ({exp['lepus_refuses']})")
        return 0
    if proc.returncode != 0 or not os.path.exists(out):
        print(proc.stdout[-3000:])
        print(proc.stderr[-3000:])
        for b in bad:
            print("  " + b)
        print(f"FAIL {case}: lepus exited with {proc.returncode}")
        return 1
    with open(out) as f:
        got = json.load(f)
    for w in meta_warnings(line for line in proc.stderr.splitlines() if "warning" in line):
        bad.append(f"lepus fit: warning about the metadata: {w}")
    bad += compare_fit(got, exp)
    if "yields" in exp:
        bad += compare_yields(h5out, exp["yields"])
    for i, xf in enumerate(exp.get("extra_fits", [])):
        bad += check_extra_fit(lepus, path, xf, os.path.join(work, f"{case}.extra{i}.json"),
                               os.path.join(work, f"{case}.extra{i}.h5"))
    if bad:
        print(f"FAIL {case} ({exp['covers']}):")
        for b in bad:
            print("  " + b)
        return 1
    print(f"ok {case}: {len(exp['parameters'])} parameters"
          + (", impacts" if "impacts" in exp else "")
          + (", post-fit yields" if "yields" in exp else "")
          + (f", {len(exp['extra_fits'])} further fits" if exp.get("extra_fits") else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
