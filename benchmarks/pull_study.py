#!/usr/bin/python3
"""Closure of the whole chain as a pull study: generate -> produce -> fit, many times.

For each study seed k the chain runs on independent samples: `lepus produce` generates the
simulation with seed 2k + 1 and the data with seed 2k + 2 (the data's m_W, or m_Z for the W-like
fit, shifted by --truth-mev against the simulation's), and `lepus fit` fits the produced input.
The pull of one pseudo-experiment is (fitted shift - expected shift) / fitted error, where the
expected shift is the true one times the attenuation slope of the finite templates that the
producer reports (1 when it reports none; docs/producers.md, "Template statistics"). The study
prints, and writes as JSON, the mean and width of the pulls with their statistical
uncertainties, the mean fitted shift against the true and the attenuation-corrected expectation,
and the run time.

    benchmarks/pull_study.py --lepus build/cli/lepus --analysis wmass-light --seeds 50
    benchmarks/pull_study.py --analysis wlike-light --seeds 50 --json wlike_pulls.json

Progress goes to stderr, one line per pseudo-experiment. --events and --luminosity default to the
demo's size (`lepus demo`: 8 M simulated events, 200 pb^-1).
"""

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ANALYSES = {
    # name: (producer, preset flag, truth flag, NOI name)
    "wmass-light": ("wmass", "--light", "--data-truth-mw-shift", "massShiftW100MeV"),
    "wmass-full": ("wmass", "--full", "--data-truth-mw-shift", "massShiftW100MeV"),
    "wlike-light": ("wlike", "--light", "--data-truth-mz-shift", "massShiftZ100MeV"),
    "wlike-full": ("wlike", "--full", "--data-truth-mz-shift", "massShiftZ100MeV"),
}


def attenuation_slope(summary, name):
    """The producer summary's expected slope for parameter name ("attenuation NAME: expected slope
    of the fitted shift 1/(1+r) = S, ..."), or 1 when it reports none."""
    m = re.search(r"attenuation " + re.escape(name) + r": expected slope[^=]*=\s*([0-9.]+)",
                  summary)
    return float(m.group(1)) if m else 1.0


def run(cmd, log):
    """Runs cmd; returns its stderr (and stdout) text. Exits with the command's message on failure."""
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n" + p.stdout + "\n")
    if p.returncode not in (0, 2):
        sys.exit("pull_study: command failed (exit %d): %s\n%s" % (p.returncode, " ".join(cmd),
                                                                   p.stdout[-4000:]))
    return p.returncode, p.stdout


def noi(fit_json, name):
    with open(fit_json) as f:
        r = json.load(f)
    for p in r["parameters"]:
        if p["name"] == name:
            return p["value_physical"], p["error_physical"], r.get("status", "")
    sys.exit("pull_study: %s has no parameter %s" % (fit_json, name))


def mean_and_width(values):
    n = len(values)
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else float("nan")
    width = math.sqrt(var)
    # Statistical uncertainties of the mean and of the standard deviation (Gaussian pulls).
    return mean, width / math.sqrt(n), width, width / math.sqrt(2.0 * (n - 1)) if n > 1 else 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lepus", default=os.path.join(os.path.dirname(__file__), "..", "build",
                                                   "cli", "lepus"))
    ap.add_argument("--analysis", choices=sorted(ANALYSES), default="wmass-light")
    ap.add_argument("--seeds", type=int, default=50, help="pseudo-experiments (default 50)")
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--events", type=int, default=8000000, help="simulated events per production")
    ap.add_argument("--luminosity", type=float, default=200.0, help="pb^-1 of generated data")
    ap.add_argument("--truth-mev", type=float, default=-30.0,
                    help="true mass shift of the data against the simulation (MeV)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--workdir", default="", help="keep the inputs and logs here")
    ap.add_argument("--json", default="", help="write the per-seed results and the summary here")
    a = ap.parse_args()
    if a.seeds < 2:
        sys.exit("pull_study: --seeds is %d, but must be >= 2 (a width needs two pulls)" % a.seeds)
    if not os.access(a.lepus, os.X_OK):
        sys.exit("pull_study: --lepus %s is not an executable" % a.lepus)

    producer, preset, truth_flag, noi_name = ANALYSES[a.analysis]
    work = a.workdir or tempfile.mkdtemp(prefix="lepus-pulls-")
    os.makedirs(work, exist_ok=True)
    log = os.path.join(work, "commands.log")
    rows = []
    t_start = time.time()
    for k in range(a.first_seed, a.first_seed + a.seeds):
        t0 = time.time()
        inp = os.path.join(work, "input_%d.h5" % k)
        out = os.path.join(work, "fit_%d.json" % k)
        _, text = run([a.lepus, "produce", producer, preset, "--generate", str(a.events),
                       "--luminosity", str(a.luminosity), "--seed", str(2 * k + 1), truth_flag,
                       str(a.truth_mev), "--threads", str(a.threads), "-o", inp], log)
        slope = attenuation_slope(text, noi_name)
        code, _ = run([a.lepus, "fit", inp, "--json", out, "--threads", str(a.threads)], log)
        value, error, status = noi(out, noi_name)
        expected = slope * a.truth_mev
        rows.append({"seed": k, "value_mev": value, "error_mev": error, "status": status,
                     "exit_code": code, "attenuation_slope": slope,
                     "pull": (value - a.truth_mev) / error,
                     "pull_corrected": (value - expected) / error,
                     "seconds": time.time() - t0})
        if not a.workdir:
            os.remove(inp)
        done = len(rows)
        eta = (time.time() - t_start) / done * (a.seeds - done)
        print("pull_study: %s seed %d (%d/%d): %+.1f +- %.1f MeV, pull %+.2f (corrected %+.2f), "
              "%.1f s, about %.0f s left" % (a.analysis, k, done, a.seeds, value, error,
                                             rows[-1]["pull"], rows[-1]["pull_corrected"],
                                             rows[-1]["seconds"], eta), file=sys.stderr)

    ok = [r for r in rows if r["exit_code"] == 0]
    pm, pm_err, pw, pw_err = mean_and_width([r["pull"] for r in ok])
    cm, cm_err, cw, cw_err = mean_and_width([r["pull_corrected"] for r in ok])
    vm, vm_err, _, _ = mean_and_width([r["value_mev"] for r in ok])
    slope = sum(r["attenuation_slope"] for r in ok) / len(ok)
    mean_error = sum(r["error_mev"] for r in ok) / len(ok)
    summary = {
        "analysis": a.analysis, "events": a.events, "luminosity_pb": a.luminosity,
        "truth_mev": a.truth_mev, "pseudo_experiments": len(rows), "converged": len(ok),
        "mean_fitted_shift_mev": vm, "mean_fitted_shift_error_mev": vm_err,
        "mean_fit_error_mev": mean_error, "attenuation_slope": slope,
        "expected_shift_mev": slope * a.truth_mev,
        "pull_mean": pm, "pull_mean_error": pm_err, "pull_width": pw, "pull_width_error": pw_err,
        "corrected_pull_mean": cm, "corrected_pull_mean_error": cm_err,
        "corrected_pull_width": cw, "corrected_pull_width_error": cw_err,
        "seconds": time.time() - t_start,
    }
    print("%s, %d pseudo-experiments (%d converged), %d simulated events, %.0f pb^-1, truth %+.1f "
          "MeV" % (a.analysis, len(rows), len(ok), a.events, a.luminosity, a.truth_mev))
    print("  mean fitted shift  %+.1f +- %.1f MeV (mean fit error %.1f MeV); expected with the "
          "attenuation slope %.3f: %+.1f MeV" % (vm, vm_err, mean_error, slope,
                                                  slope * a.truth_mev))
    print("  pulls (truth):     mean %+.3f +- %.3f, width %.3f +- %.3f" % (pm, pm_err, pw, pw_err))
    print("  pulls (corrected): mean %+.3f +- %.3f, width %.3f +- %.3f" % (cm, cm_err, cw, cw_err))
    print("  time %.0f s (%.1f s per pseudo-experiment)" % (summary["seconds"],
                                                          summary["seconds"] / len(rows)))
    if a.json:
        tmp = a.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"summary": summary, "pseudo_experiments": rows}, f, indent=1)
        os.replace(tmp, a.json)
    if not a.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
