"""Fixtures of the lepus Python tests (tests/python, run by ctest with the label `python`).

Environment (set by tests/python/CMakeLists.txt): PYTHONPATH=<build>/python, LEPUS_CLI (the
`lepus` executable), LEPUS_CONFORMANCE_DIR (tests/data/conformance)."""
import os
import warnings

import h5py
import numpy as np
import pytest

import lepus

CONFORMANCE = os.environ.get(
    "LEPUS_CONFORMANCE_DIR",
    os.path.join(os.path.dirname(__file__), "..", "data", "conformance"))


def conformance(name):
    return os.path.join(CONFORMANCE, name)


def read_quiet(path):
    """lepus.read without the 'no meta_json' warning of the conformance files."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return lepus.read(path)


def arrays_of_file(path):
    """The datasets of a dense rabbit-layout file as the arguments of Model.from_arrays (h5py)."""
    with h5py.File(path, "r") as f:
        def arr(name):
            d = f[name]
            v = d[...]
            shape = d.attrs.get("original_shape")
            return v.reshape(tuple(shape)) if shape is not None else v

        def names(name):
            return [s.decode() if isinstance(s, bytes) else str(s) for s in f[name][...]]

        procs = names("hprocs")
        systs = names("hsysts")
        logk = arr("hlogk")
        kw = {}
        if logk.ndim == 4:
            kw["logk_halfdiff"] = logk[:, :, 1, :]
            logk = logk[:, :, 0, :]
        groups = {}
        if "hsystgroups" in f and len(f["hsystgroups"]):
            for g, idx in zip(names("hsystgroups"), f["hsystgroupidxs"][...]):
                groups[g] = [systs[i] for i in idx]
        return dict(norm=arr("hnorm"), logk=logk, data=arr("hdata_obs"), processes=procs,
                    systematics=systs, signals=names("hsignals"), sumw2=arr("hsumw2"),
                    constraint_weights=arr("hconstraintweights"),
                    noi=[systs[i] for i in f["hnoiidxs"][...]] if "hnoiidxs" in f else (),
                    groups=groups, **kw)


def synthetic_arrays(nbins=20, nproc=3, nsyst=4, seed=1):
    """A small model: one signal, log-normal shape systematics, MC statistics, one free
    nuisance of interest."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 1, nbins)
    norm = np.empty((nbins, nproc))
    norm[:, 0] = 50 * np.exp(-0.5 * ((x - 0.5) / 0.15) ** 2) + 1
    for p in range(1, nproc):
        norm[:, p] = 80 * np.exp(-p * x) + 5
    logk = rng.normal(0, 0.03, size=(nbins, nproc, nsyst))
    logk[:, :, 0] = 0.05 * (x - 0.5)[:, None]  # a shape nuisance of interest
    data = rng.poisson(norm.sum(axis=1)).astype(float)
    sumw2 = norm * 0.05
    cw = np.ones(nsyst)
    cw[0] = 0.0
    return dict(norm=norm, logk=logk, data=data,
                processes=["sig"] + [f"bkg{p}" for p in range(1, nproc)],
                systematics=["shift"] + [f"syst{s}" for s in range(1, nsyst)],
                signals=["sig"], sumw2=sumw2, constraint_weights=cw, noi=["shift"],
                groups={"exp": [f"syst{s}" for s in range(1, nsyst)]})


@pytest.fixture
def synthetic():
    return lepus.Model.from_arrays(**synthetic_arrays())


@pytest.fixture
def cli():
    path = os.environ.get("LEPUS_CLI")
    if not path or not os.path.exists(path):
        pytest.skip("LEPUS_CLI (the lepus executable) is not set")
    return path
