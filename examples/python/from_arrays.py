#!/usr/bin/env python3
"""Build a model from numpy arrays, fit it, and look at post-fit yields.

    PYTHONPATH=build/python /usr/bin/python3 examples/python/from_arrays.py

The arrays are rabbit's tensor layout: norm [bins, processes], logk [bins, processes,
systematics] (the log of the yield ratio per unit of the nuisance), observed data [bins]. The
same checks as for a file apply: a NaN or a negative count raises ValueError naming the entry.
"""
import numpy as np

import lepus

nbins = 20
edges = np.linspace(60, 120, nbins + 1)
centres = 0.5 * (edges[1:] + edges[:-1])
signal = 500 * np.exp(-0.5 * ((centres - 91) / 3) ** 2)
background = 30 * np.exp(-(centres - 60) / 40)
norm = np.column_stack([signal, background])

# Systematics: a +-0.5% mass-scale-like shape on the signal, a 20% background normalisation.
up = 500 * np.exp(-0.5 * ((centres - 91 * 1.005) / 3) ** 2)
logk = np.zeros((nbins, 2, 2))
logk[:, 0, 0] = np.log(np.maximum(up, 1e-9) / signal)
logk[:, 1, 1] = np.log(1.2)

rng = np.random.default_rng(3)
data = rng.poisson(norm.sum(axis=1)).astype(float)

model = lepus.Model.from_arrays(norm, logk, data, processes=["Z", "bkg"], systematics=["scale", "bkg_norm"],
                                signals=["Z"], sumw2=norm / 100.0)  # MC statistics: 100 x the data
result = model.fit()
print(result)
for name, value, error in zip(result.names, result.values, result.errors):
    print(f"  {name:<9} {value:+.4f} +- {error:.4f}")

yields = model.postfit_yields(result)
post, pre = yields["postfit"], yields["prefit"]
print("\n  bin      data   prefit          postfit")
for b in range(0, nbins, 4):
    print(f"  {centres[b]:5.1f} {data[b]:8.0f} {pre['total'][b]:8.1f} +- {pre['total_error'][b]:5.1f}"
          f" {post['total'][b]:8.1f} +- {post['total_error'][b]:4.1f}")

# Errors carry the C++ message.
bad = data.copy()
bad[4] = -1
try:
    lepus.Model.from_arrays(norm, logk, bad, processes=["Z", "bkg"], systematics=["scale", "bkg_norm"], signals=["Z"])
except ValueError as e:
    print(f"\nValueError: {e}")
