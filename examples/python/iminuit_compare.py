#!/usr/bin/env python3
"""Minimise lepus's NLL with iminuit (MIGRAD with lepus's exact gradient) and compare with
Model.fit (trust-region Newton with the exact Hessian).

    PYTHONPATH=build/python /usr/bin/python3 examples/python/iminuit_compare.py

Model.nll, Model.gradient and Model.hessian take the parameter vector in Model.parameter_names
order (signal strengths, then nuisances), so any minimiser can drive the likelihood.
"""
import time

import numpy as np
from iminuit import Minuit

import lepus

rng = np.random.default_rng(11)
nbins, nproc, nsyst = 40, 3, 12
x = np.linspace(0, 1, nbins)
norm = np.column_stack([80 * np.exp(-0.5 * ((x - 0.5) / 0.12) ** 2) + 3, 150 * np.exp(-1.5 * x) + 5, 30 + 10 * x])
logk = rng.normal(0, 0.02, (nbins, nproc, nsyst))
model = lepus.Model.from_arrays(norm, logk, rng.poisson(norm.sum(axis=1)).astype(float),
                                processes=["sig", "bkg1", "bkg2"], systematics=[f"s{i}" for i in range(nsyst)],
                                signals=["sig"], sumw2=0.03 * norm)

t0 = time.perf_counter()
fit = model.fit(threads=1)
t_fit = time.perf_counter() - t0

m = Minuit(model.nll, model.initial_values(), grad=model.gradient, name=model.parameter_names)
m.errordef = Minuit.LIKELIHOOD
m.strategy = 2
t0 = time.perf_counter()
m.migrad()
m.hesse()
t_minuit = time.perf_counter() - t0

print(f"lepus Model.fit: nll {fit.nll:.8f} in {fit.iterations} Newton iterations, {1e3 * t_fit:.1f} ms")
print(f"iminuit MIGRAD:  nll {m.fval:.8f} in {m.nfcn} calls + {m.ngrad} gradients, {1e3 * t_minuit:.1f} ms "
      f"(valid: {m.valid})")
print(f"\n  {'parameter':<9} {'lepus':>18} {'iminuit':>18}   diff/error")
for i, name in enumerate(model.parameter_names):
    d = (m.values[i] - fit.values[i]) / fit.errors[i]
    print(f"  {name:<9} {fit.values[i]:+9.5f} +- {fit.errors[i]:.5f} {m.values[i]:+9.5f} +- {m.errors[i]:.5f}   {d:+.1e}")
# The exact Hessian at the minimum inverts to lepus's covariance.
cov = np.linalg.inv(model.hessian(fit.x))
print(f"\nmax |inv(Model.hessian) - FitResult.covariance| = {np.abs(cov - fit.covariance).max():.1e}")
