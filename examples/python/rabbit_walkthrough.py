#!/usr/bin/env python3
"""For rabbit users: read your rabbit input file, fit it, and get impacts.

    PYTHONPATH=build/python /usr/bin/python3 examples/python/rabbit_walkthrough.py [rabbit_input.hdf5]

lepus reads the files rabbit's TensorWriter writes (dense or sparse, compressed, with the pickled
`meta`), and fits rabbit's likelihood: the same parameters (signal strengths named after the
signal processes, then hsysts), the same Barlow-Beeston options and the same impact definitions
(docs/inference.md has the correspondence table). Without an argument a small file in rabbit's
layout is written first with h5py, as rabbit writes it (flattened datasets with an
`original_shape` attribute, string lists as variable-length strings).
"""
import os
import sys
import tempfile

import h5py
import numpy as np

import lepus


def write_rabbit_layout(path):
    rng = np.random.default_rng(5)
    nbins, procs, systs = 24, ["sig", "ewk", "qcd"], ["massShift", "lumi", "qcdNorm", "effStat0", "effStat1"]
    x = np.linspace(0, 1, nbins)
    norm = np.column_stack([100 * np.exp(-0.5 * ((x - 0.5) / 0.15) ** 2) + 5, 120 * np.exp(-x) + 10, 50 * (1 - x) + 5])
    logk = np.zeros((nbins, len(procs), len(systs)))
    logk[:, 0, 0] = 0.1 * (x - 0.5)          # the mass shift (nuisance of interest)
    logk[:, :, 1] = np.log(1.017)            # luminosity
    logk[:, 2, 2] = np.log(1.3)              # QCD normalisation
    logk[:12, :2, 3] = 0.01                  # efficiency statistical nuisances
    logk[12:, :2, 4] = 0.01
    with h5py.File(path, "w") as f:
        def flat(name, a):
            d = f.create_dataset(name, data=np.asarray(a, dtype=float).ravel())
            d.attrs["original_shape"] = np.asarray(a).shape

        def strings(name, names):
            f.create_dataset(name, data=np.array(names, dtype=object), dtype=h5py.string_dtype())

        strings("hprocs", procs)
        strings("hsignals", ["sig"])
        strings("hsysts", systs)
        strings("hsystsnoconstraint", ["massShift"])
        strings("hsystgroups", ["luminosity", "efficiency"])
        g = f.create_dataset("hsystgroupidxs", (2,), dtype=h5py.vlen_dtype(np.int32))
        g[0], g[1] = np.array([1], np.int32), np.array([3, 4], np.int32)
        f.create_dataset("hnoiidxs", data=np.array([0], np.int32))
        flat("hconstraintweights", [0.0, 1, 1, 1, 1])
        flat("hdata_obs", rng.poisson(norm.sum(axis=1)))
        flat("hnorm", norm)
        flat("hsumw", norm)
        flat("hsumw2", 0.01 * norm)
        flat("hlogk", logk)


def main():
    if len(sys.argv) > 1:
        walk_through(sys.argv[1])
    else:
        with tempfile.TemporaryDirectory(prefix="lepus_rabbit_") as tmp:
            path = os.path.join(tmp, "rabbit.hdf5")
            write_rabbit_layout(path)
            walk_through(path)


def walk_through(path):
    model = lepus.read(path)  # warnings (e.g. no channel metadata) come as UserWarning
    print(model, "\nPOIs:", model.signals, " NOIs:", model.noi, " groups:", list(model.groups))

    # rabbit_fit input.hdf5 -t 0 --doImpacts --globalImpacts   ~   model.fit() + model.impacts()
    result = model.fit()
    print(f"\nfit: {result.status}, -2 ln L (saturated) = {2 * result.nll:.3f} for {result.gof['ndf']} ndf, "
          f"p = {result.gof['p']:.3f}")
    for name in model.signals + model.noi:
        i = result.names.index(name)
        print(f"  {name:<10} {result.values[i]:+.4f} +- {result.errors[i]:.4f}")

    impacts = model.impacts(result)  # nominal ("traditional") and global impacts, grouped too
    for target in impacts["targets"]:
        print(f"\nimpacts on {target} (total {impacts['total'][target]:.4f}):")
        print(f"  {'group':<14} {'nominal':>9} {'global':>9}")
        for group in impacts["groups"]:
            print(f"  {group:<14} {impacts['grouped_nominal'][target][group]:9.4f} "
                  f"{impacts['grouped_global'][target][group]:9.4f}")

    # The same numbers as numpy arrays: [targets x parameters] and [targets x groups].
    arrays = impacts["arrays"]
    print("\nnominal impact matrix", arrays["nominal"].shape, "over", arrays["parameters"])

    # The JSON summary, exactly as `lepus fit --json` writes it.
    summary = result.to_dict()
    print("\nJSON keys:", ", ".join(sorted(summary)))


if __name__ == "__main__":
    main()
