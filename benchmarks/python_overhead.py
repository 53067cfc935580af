#!/usr/bin/env python3
"""Python overhead of the lepus bindings (a benchmark, not a test; docs/python.md "Speed").

    PYTHONPATH=build/python /usr/bin/python3 benchmarks/python_overhead.py [--lepus build/cli/lepus]

1. Per gradient call on a small model: Model.gradient from Python vs the same ValueAndGradient
   call timed in a C++ loop (Likelihood._time_gradient), same thread count; the difference is
   the Python overhead (argument conversion, GIL release, the result array).
2. A fit from Python vs the CLI: the wall time of Model.fit() (read excluded) against the fit time
   `lepus fit --json` reports (timings.total) on the same file; medians of several runs.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

import lepus


def model(nbins, nproc, nsyst, seed=1):
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 1, nbins)
    norm = np.column_stack([100 * np.exp(-0.5 * ((x - 0.5) / 0.1) ** 2) + 5] +
                           [200 * np.exp(-(p + 1) * x) + 10 for p in range(nproc - 1)])
    logk = rng.normal(0, 0.02, (nbins, nproc, nsyst))
    return lepus.Model.from_arrays(norm, logk, rng.poisson(norm.sum(axis=1)).astype(float),
                                   processes=["sig"] + [f"b{p}" for p in range(nproc - 1)],
                                   systematics=[f"s{s}" for s in range(nsyst)], signals=["sig"], sumw2=0.02 * norm)


def gradient_overhead(threads, repeat=7, n=20000):
    m = model(10, 2, 5)
    lik = m.likelihood(threads=threads)
    x = lik.initial_values() + 0.01
    lik.gradient(x)
    py, cc = [], []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(n):
            lik.gradient(x)
        py.append((time.perf_counter() - t0) / n)
        cc.append(lik._time_gradient(x, n))
    p, c = statistics.median(py), statistics.median(cc)
    print(f"gradient, small model (10 bins, 2 processes, 5 systematics, threads={threads}):")
    print(f"  C++ ValueAndGradient {1e6 * c:7.2f} us/call, Model.gradient from Python {1e6 * p:7.2f} us/call, "
          f"overhead {1e6 * (p - c):5.2f} us/call")
    return p - c


def fit_vs_cli(lepus_exe, threads, repeat=5):
    m = model(2000, 5, 300, seed=2)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.hdf5")
        m.write(path)
        cmd = [lepus_exe, "fit", path, "--threads", str(threads), "--json", "-"]
        lik = lepus.read(path).likelihood(threads=threads)
        lik.fit()  # warm-up
        py_fit, py_all, cli_fit, cli_all = [], [], [], []
        for _ in range(repeat):
            t0 = time.perf_counter()
            lik.fit()
            py_fit.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            lepus.read(path).fit(threads=threads).to_dict()
            py_all.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            out = subprocess.run(cmd, check=True, capture_output=True, text=True)
            cli_all.append(time.perf_counter() - t0)
            cli_fit.append(json.loads(out.stdout)["timings"]["total"])
    pf, pa, cf, ca = (statistics.median(v) for v in (py_fit, py_all, cli_fit, cli_all))
    print(f"fit (2000 bins, 5 processes, 300 systematics, threads={threads}), medians of {repeat}:")
    print(f"  the fit:     CLI timings.total {1e3 * cf:7.1f} ms, Likelihood.fit() wall from Python {1e3 * pf:7.1f} ms"
          f" ({100 * (pf / cf - 1):+.1f}%)")
    print(f"  end to end:  `lepus fit --json -` process {1e3 * ca:7.1f} ms, lepus.read + Model.fit + to_dict "
          f"{1e3 * pa:7.1f} ms ({100 * (pa / ca - 1):+.1f}%)")
    return pf / cf - 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--lepus", default=os.path.join(here, "..", "build", "cli", "lepus"))
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    a = ap.parse_args()
    print(f"lepus {lepus.__version__}, python {sys.version.split()[0]}, numpy {np.__version__}")
    for t in a.threads:
        gradient_overhead(t)
    if os.path.exists(a.lepus):
        for t in a.threads:
            fit_vs_cli(a.lepus, t)
    else:
        print(f"{a.lepus} not found: the fit comparison is skipped (--lepus PATH)")


if __name__ == "__main__":
    main()
