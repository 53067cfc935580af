#!/usr/bin/env python3
"""Fit a fit input file and print a parameter table.

    PYTHONPATH=build/python /usr/bin/python3 examples/python/fit_table.py [INPUT.hdf5]

Without an argument, a small input is made first with numpy (a peaked signal over two falling
backgrounds, four systematics) and written next to this run in a temporary directory.
"""
import os
import sys
import tempfile

import numpy as np

import lepus


def make_input(path):
    rng = np.random.default_rng(7)
    x = np.linspace(0, 1, 30)
    norm = np.column_stack([60 * np.exp(-0.5 * ((x - 0.45) / 0.1) ** 2) + 2,
                            200 * np.exp(-2 * x) + 10, 40 + 30 * x])
    logk = np.zeros((30, 3, 4))
    logk[:, 0, 0] = 0.08 * (x - 0.45)            # signal shape (a nuisance of interest, free)
    logk[:, 1, 1] = np.log(1.05)                 # background normalisation, 5%
    logk[:, 2, 2] = np.log(1.10)                 # second background normalisation, 10%
    logk[:, :, 3] = 0.02 * (1 - 2 * x)[:, None]  # detector slope on every process
    model = lepus.Model.from_arrays(
        norm, logk, rng.poisson(norm.sum(axis=1)).astype(float),
        processes=["signal", "bkg_a", "bkg_b"], systematics=["shape", "norm_a", "norm_b", "slope"],
        signals=["signal"], sumw2=0.02 * norm, constraint_weights=[0, 1, 1, 1], noi=["shape"],
        groups={"normalisation": ["norm_a", "norm_b"], "detector": ["slope"]})
    model.write(path)


def main():
    if len(sys.argv) > 1:
        report(sys.argv[1])
    else:
        with tempfile.TemporaryDirectory(prefix="lepus_example_") as tmp:
            path = os.path.join(tmp, "input.hdf5")
            make_input(path)
            report(path)


def report(path):
    model = lepus.read(path)
    print(model)
    result = model.fit()
    print(f"status {result.status}, nll {result.nll:.4f}, edm {result.edm:.2g}, "
          f"{result.iterations} iterations, {1e3 * result.timings['total']:.2f} ms")
    print(f"goodness of fit: chi2/ndf = {result.gof['chi2']:.2f}/{result.gof['ndf']}, p = {result.gof['p']:.3f}")
    width = max(len("parameter"), *(len(n) for n in result.names))
    print(f"\n  {'parameter':<{width}}  {'value':>10}  {'error':>9}")
    for name, value, error in zip(result.names, result.values, result.errors):
        print(f"  {name:<{width}}  {value:>10.4f}  {error:>9.4f}")
    corr = result.correlation
    i, j = 0, result.names.index(model.noi[0]) if model.noi else 1
    print(f"\ncorrelation({result.names[i]}, {result.names[j]}) = {corr[i, j]:+.3f}")


if __name__ == "__main__":
    main()
