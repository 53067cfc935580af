#!/usr/bin/python3
"""Template-statistics study: the response of the fitted mass to a true mass shift against the
size of the simulation, next to the producer's expected attenuation 1/(1+r) (docs/producers.md,
"Template statistics").

For each analysis (W: `lepus produce wmass`, W-like: `lepus produce wlike`; light presets) and
each simulation size N, K productions with independent simulation seeds are made, each with
pseudo-data sets at -D and +D MeV (the expectation with the signal Breit-Wigner reweighted).
Every production A is fitted to the pseudo-data of every other production R (an independent
simulation sample: the "truth" is not built from the events of the templates that fit it):
the slope of A is (theta(+D) - theta(-D)) / (2 D). The measured slope at N is the mean over the
K productions of their mean slope (over their K - 1 partners), its uncertainty the standard
deviation of those K values / sqrt(K); the noise of R's templates enters only as scatter (it is
independent of A's). The prediction is the mean of the K productions' 1/(1+r) from their
summaries. Each pair is fitted twice: profiling every nuisance (the default `lepus fit`) and
with every nuisance frozen at 0 (only the mass and the signal strength free, as the estimate
assumes); Barlow-Beeston lite in both.

usage: benchmarks/attenuation_study.py [--lepus build/cli/lepus] [--work DIR]
           [--analyses wmass,wlike] [--sizes 0.25,0.5,1,2,4] [--seeds 4] [--shift 50]
           [--wmass-eta-bins 48] [--wlike-eta-bins 12] [--threads 2] [--markdown]
The W-like default is 12 eta bins: with 24 (or the preset's 48) and 0.25 M simulated events some
forward high-pT bins have no simulated event, and a fit to another sample's pseudo-data refuses
a zero expectation under observed events. The attenuation grows with the bins (r ~ n_bins / N).
--iterate K: instead, the iterated fit: a production fitted to another's +D MeV pseudo-data,
produced again with --mass-center at the fitted mass and refitted, K times (profiled fits).
Needs numpy and h5py. Prints a table (plain or --markdown) and writes DIR/results.json.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

import h5py
import numpy as np


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if p.returncode != 0:
        sys.exit("failed (%d): %s\n%s" % (p.returncode, " ".join(cmd), p.stderr[-3000:]))
    return p


def produce(args, analysis, events, seed, path, center=None):
    """One production; returns the summary's attenuation estimates {parameter: (slope, r)}."""
    cfg = {
        "lepus_config_version": 1,
        "producer": analysis,
        "preset": "light",
        "binning": {"eta_bins": args.wmass_eta_bins if analysis == "wmass" else args.wlike_eta_bins},
        "simulation": {"events": int(events), "seed": int(seed)},
        # The data are not used (pseudo-data fits) but fix them: the W non-prompt estimate
        # comes from them.
        "data": {"seed": 7},
        "systematics": {"mass": {"pseudodata_shifts_mev": [-args.shift, args.shift]}},
    }
    if center is not None:
        cfg["systematics"]["mass"]["center_mev"] = center
    cfg_path = path + ".json"
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    p = run([args.lepus, "produce", analysis, "--config", cfg_path, "--threads",
             str(args.threads), "-o", path])
    with h5py.File(path, "r") as f:
        sumw = f["hsumw"][()].reshape(f["hsumw"].attrs["original_shape"])
    empty = int((sumw.sum(axis=1) <= 0).sum())
    if empty:
        sys.exit("%s: %d bins without a simulated event at %d events: another sample's "
                 "pseudo-data cannot be fitted there; use more events or fewer eta bins" %
                 (path, empty, events))
    att = {}
    for m in re.finditer(r"attenuation (\S+): expected slope of the fitted shift 1/\(1\+r\) = "
                         r"([0-9.eE+-]+), r = ([0-9.eE+-]+)", p.stderr):
        att[m.group(1)] = (float(m.group(2)), float(m.group(3)))
    if not att:
        sys.exit("no attenuation in the summary of %s:\n%s" % (path, p.stderr[-3000:]))
    return att


# Every parameter but the mass and the signal strength (the estimate's assumption); the
# Barlow-Beeston parameters stay profiled.
FREEZE_NUISANCES = "(?!massShift|Wmunu|Zmumu).*"


def fit_noi(args, path, pseudodata, noi, frozen=False):
    cmd = [args.lepus, "fit", path, "--pseudodata", pseudodata, "--json", "-", "--threads",
           str(args.threads)]
    if frozen:
        cmd += ["--freeze", FREEZE_NUISANCES]
    p = run(cmd)
    j = json.loads(p.stdout)
    if j.get("status") != "converged":
        # Keep the number but say so: a failed fit is a status, not a confident number.
        print("warning: %s %s: fit status %r" % (path, pseudodata, j.get("status")),
              file=sys.stderr)
    for e in j["parameters"]:
        if e["name"] == noi:
            return e["value_physical"]
    sys.exit("%s: no parameter %s in the fit" % (path, noi))


def with_pseudodata_of(a_path, r_path, out_path):
    """A's fit input with R's pseudo-data (same configuration, so the same layout)."""
    shutil.copyfile(a_path, out_path)
    with h5py.File(out_path, "r+") as fa, h5py.File(r_path, "r") as fr:
        names_a = [n.decode() if isinstance(n, bytes) else n for n in fa["hpseudodatanames"][()]]
        names_r = [n.decode() if isinstance(n, bytes) else n for n in fr["hpseudodatanames"][()]]
        if names_a != names_r or fa["hpseudodata"].shape != fr["hpseudodata"].shape:
            sys.exit("%s and %s: different pseudo-data layouts" % (a_path, r_path))
        fa["hpseudodata"][...] = fr["hpseudodata"][...]


SIMULATION_MASS_MEV = {"wmass": 80379.0, "wlike": 91187.6}


def iterate(args, analysis, noi):
    """The iterated fit (--mass-center): production A fitted to the +shift pseudo-data of an
    independent production R, recentred at each fitted mass and refitted. Prints the absolute
    fitted mass minus the simulation's per iteration (the truth is +shift)."""
    size = float(args.sizes.split(",")[0])
    events = round(size * 1e6)
    ref = os.path.join(args.work, "%s_ref.h5" % analysis)
    produce(args, analysis, events, 9001, ref)
    hi = "mass_shift_p%dMeV" % round(args.shift)
    center = SIMULATION_MASS_MEV[analysis]
    out = []
    for k in range(args.iterate + 1):
        path = os.path.join(args.work, "%s_it%d.h5" % (analysis, k))
        produce(args, analysis, events, 9002, path, center=None if k == 0 else center)
        mixed = os.path.join(args.work, "mixed.h5")
        with_pseudodata_of(path, ref, mixed)
        fitted = fit_noi(args, mixed, hi, noi)
        center += fitted
        out.append(center - SIMULATION_MASS_MEV[analysis])
        print("%s %gM iteration %d: fitted %.2f MeV relative to the centre, m - m_sim = %.2f MeV "
              "(truth %+g)" % (analysis, size, k, fitted, out[-1], args.shift), flush=True)
        os.remove(path)
    os.remove(ref)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lepus", default="build/cli/lepus")
    ap.add_argument("--work", default="attenuation_study")
    ap.add_argument("--analyses", default="wmass,wlike")
    ap.add_argument("--sizes", default="0.25,0.5,1,2,4", help="simulated events, millions")
    ap.add_argument("--seeds", type=int, default=4, help="independent productions per size")
    ap.add_argument("--shift", type=float, default=50.0, help="pseudo-data shifts +-MeV")
    ap.add_argument("--wmass-eta-bins", type=int, default=48)
    ap.add_argument("--wlike-eta-bins", type=int, default=12)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--iterate", type=int, default=0,
                    help="instead of the slopes: the iterated fit with --mass-center, this many "
                         "recentrings, at the first --sizes")
    args = ap.parse_args()
    if args.seeds < 2:
        sys.exit("--seeds must be at least 2 (every production is fitted to the others')")
    os.makedirs(args.work, exist_ok=True)
    noi = {"wmass": "massShiftW100MeV", "wlike": "massShiftZ100MeV"}
    lo = "mass_shift_m%dMeV" % round(args.shift)
    hi = "mass_shift_p%dMeV" % round(args.shift)
    if args.iterate > 0:
        for analysis in args.analyses.split(","):
            iterate(args, analysis, noi[analysis])
        return
    rows = []
    t0 = time.time()
    for analysis in args.analyses.split(","):
        for size in [float(s) for s in args.sizes.split(",")]:
            events = round(size * 1e6)
            paths, predicted, r_values = [], [], []
            for k in range(args.seeds):
                # Seeds distinct across sizes and analyses: every sample is independent.
                seed = 1000 * (1 + k) + round(size * 100)
                path = os.path.join(args.work, "%s_%gM_s%d.h5" % (analysis, size, seed))
                att = produce(args, analysis, events, seed, path)
                slope, r = att[noi[analysis]]
                paths.append(path)
                predicted.append(slope)
                r_values.append(r)
            per_sample, per_sample_frozen = [], []
            for a in range(args.seeds):
                slopes, slopes_frozen = [], []
                for r in range(args.seeds):
                    if r == a:
                        continue
                    mixed = os.path.join(args.work, "mixed.h5")
                    with_pseudodata_of(paths[a], paths[r], mixed)
                    up = fit_noi(args, mixed, hi, noi[analysis])
                    dn = fit_noi(args, mixed, lo, noi[analysis])
                    slopes.append((up - dn) / (2 * args.shift))
                    up = fit_noi(args, mixed, hi, noi[analysis], frozen=True)
                    dn = fit_noi(args, mixed, lo, noi[analysis], frozen=True)
                    slopes_frozen.append((up - dn) / (2 * args.shift))
                per_sample.append(float(np.mean(slopes)))
                per_sample_frozen.append(float(np.mean(slopes_frozen)))
            measured = float(np.mean(per_sample))
            error = float(np.std(per_sample, ddof=1) / np.sqrt(len(per_sample)))
            frozen = float(np.mean(per_sample_frozen))
            frozen_error = float(np.std(per_sample_frozen, ddof=1) / np.sqrt(len(per_sample)))
            row = {"analysis": analysis, "sim_events": events, "seeds": args.seeds,
                   "measured_slope": measured, "measured_error": error,
                   "per_sample": per_sample, "frozen_slope": frozen,
                   "frozen_error": frozen_error, "per_sample_frozen": per_sample_frozen,
                   "predicted_slope": float(np.mean(predicted)),
                   "predicted_r": float(np.mean(r_values))}
            rows.append(row)
            print("%-6s %5gM  measured %.3f +- %.3f  nuisances frozen %.3f +- %.3f  predicted %.3f "
                  "(r %.3f)   [%.0f s]" %
                  (analysis, size, measured, error, frozen, frozen_error, row["predicted_slope"],
                   row["predicted_r"], time.time() - t0), file=sys.stderr, flush=True)
            for p in paths:
                os.remove(p)
            # After every size: a later failure keeps the rows done.
            with open(os.path.join(args.work, "results.json"), "w") as f:
                json.dump({"command": " ".join(sys.argv), "rows": rows}, f, indent=1)
    if args.markdown:
        print("| analysis | simulated events | measured slope (profiled) | measured slope "
              "(nuisances frozen) | predicted 1/(1+r) | r |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            print("| %s | %gM | %.3f +- %.3f | %.3f +- %.3f | %.3f | %.3f |" %
                  (r["analysis"], r["sim_events"] / 1e6, r["measured_slope"], r["measured_error"],
                   r["frozen_slope"], r["frozen_error"], r["predicted_slope"], r["predicted_r"]))
    else:
        print("%-8s %10s %18s %18s %10s %8s" % ("analysis", "sim", "profiled slope",
                                                "frozen slope", "1/(1+r)", "r"))
        for r in rows:
            print("%-8s %9gM %10.3f +- %.3f %10.3f +- %.3f %10.3f %8.3f" %
                  (r["analysis"], r["sim_events"] / 1e6, r["measured_slope"], r["measured_error"],
                   r["frozen_slope"], r["frozen_error"], r["predicted_slope"], r["predicted_r"]))
    print("total %.0f s" % (time.time() - t0), file=sys.stderr)


if __name__ == "__main__":
    main()
