#!/usr/bin/env python3
"""Writes the rabbit-layout corpus and its expected fit results.

    make_corpus.py OUTDIR [CASE...]  writes OUTDIR/<case>.hdf5 and OUTDIR/expected.json (a subset
                                     of cases updates an existing expected.json)
    make_corpus.py --list        prints the case names (no numpy needed; used by CMake)

Every file is written by writer.py (rabbit's TensorWriter.write() layout) and fitted by
reference.py (rabbit's likelihood in numpy/scipy); lepus is never called here. Seeds are fixed,
so the output is deterministic. See README.md for the cases and the tolerances.
"""

import json
import os
import sys

CASES = [
    "dense_sym", "sparse_sym", "dense_asym", "sparse_asym",
    "symm_average", "symm_conservative", "symm_linear", "symm_quadratic",
    "masked_channel", "multi_signal", "free_noi_groups", "noi_constrained",
    "normal_systype", "normal_systype_asym", "zero_variance", "bb_normal_multiplicative",
    "bb_normal_additive", "no_bbstat", "poi_positive", "pseudodata",
    "chisq", "chisq_nobb", "chisq_normal_additive", "weighted_data_poisson",
    "weighted_data_chisq", "covariance", "covariance_nobb", "covariance_normal_multiplicative",
    "covariance_bbstat_in_cov", "covariance_syst_in_cov",
    "external_dense", "external_sparse", "external_grad_only", "beta_variations",
    "bb_full", "bb_full_gamma", "bb_full_normal_additive", "chisq_bb_full", "chisq_bb_full_gamma",
    "covariance_bb_full", "covariance_bb_full_normal_multiplicative",
]

if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--list":
    print(";".join(CASES))
    sys.exit(0)

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import reference  # noqa: E402
from writer import Regular, TensorWriter, Variable  # noqa: E402

# The fitted channels: ch0 (12 bins, 1-D, Regular with flow bins, which the channel does not
# keep) and ch1 (3 x 4 bins, 2-D: a Variable axis without flow bins, then a Regular one).
CHANNELS = (("ch0", [Regular(12, 0.0, 120.0, "pt", "p_{T} (GeV)")]),
            ("ch1", [Variable([0.0, 0.4, 1.0, 2.5], "absy", "|y|", flow=False),
                     Regular(4, -2.0, 2.0, "eta")]))
# The masked channel: Regular(3) kept with its under- and overflow bins (flow=True, which rabbit
# allows for masked channels only): 5 bins.
MASKED = ("gen", [Regular(3, 0.0, 30.0, "ptgen")])


# --- model building blocks ---------------------------------------------------------------------
def shapes(nb, rng):
    """A peaked signal and two falling backgrounds over nb bins."""
    t = (np.arange(nb) + 0.5) / nb
    sig = 80.0 * np.exp(-0.5 * ((t - 0.5) / 0.18) ** 2) + 4.0
    bkg1 = 150.0 * np.exp(-1.5 * t) * (1 + 0.05 * rng.standard_normal(nb))
    bkg2 = 40.0 + 20.0 * t
    return {"sig": sig, "bkg1": bkg1, "bkg2": bkg2}


def slope(nb, a):
    t = (np.arange(nb) + 0.5) / nb
    return 1.0 + a * (2 * t - 1)


def build(case, rng, *, sparse=False, systematic_type="log_normal", channels=CHANNELS,
          signals=("sig",), asym=None, symmetrize="average", masked=False,
          mcstat=(0.08, 0.15, 0.1), extra=None, truth=None, add_bbb_cov=False, data_cov=False,
          weighted_data=False, npseudo=0):
    """One model: 3 processes (signals + backgrounds), symmetric/asymmetric shape and norm
    systematics, Poisson data drawn from a shifted truth. Returns the writer."""
    w = TensorWriter(sparse=sparse, systematic_type=systematic_type,
                     add_bin_by_bin_stat_to_data_cov=add_bbb_cov)
    truth = truth or {}
    procnames = list(signals) + ["bkg1", "bkg2"]
    for ch, axes in channels:
        w.add_channel(axes, ch)
    if masked:
        w.add_channel(MASKED[1], MASKED[0], masked=True, flow=True)
    chshape = {ch: info["shape"] for ch, info in w.channels.items()}
    expected = {}
    for ich, (ch, _) in enumerate(channels):
        shape = chshape[ch]
        nb = int(np.prod(shape))
        sh = shapes(nb, rng)
        total = np.zeros(nb)
        for ip, p in enumerate(procnames):
            if p in signals:  # each signal peaks elsewhere
                t = (np.arange(nb) + 0.5) / nb
                c = 0.5 if len(signals) == 1 else 0.25 + 0.5 * ip / (len(signals) - 1)
                base = 80.0 * np.exp(-0.5 * ((t - c) / 0.15) ** 2) + 4.0
            else:
                base = sh[p]
            base = base * (1.0 + 0.3 * ich)
            if sparse and p == "bkg2":
                base = base.copy()
                base[::3] = 0.0  # zeros make the sparse layout differ from dense
            rel = mcstat[0] if p in signals else mcstat[1 if p == "bkg1" else 2]
            w.add_process(base.reshape(shape), p, ch, signal=p in signals,
                          variances=((rel * base) ** 2).reshape(shape))
            mu = truth.get(p, 1.0)
            total += mu * base
        expected[ch] = total
    if masked:
        for ip, p in enumerate(procnames):
            g = np.array([30.0, 20.0, 10.0, 5.0, 2.0]) * (1 + 0.1 * ip)
            w.add_process(g, p, "gen", signal=p in signals, variances=0.01 * g**2)
    # systematics on the fitted channels
    for ich, (ch, _) in enumerate(channels):
        shape = chshape[ch]
        nb = int(np.prod(shape))
        for p in procnames:
            norm = w.dict_norm[ch][p].reshape(shape)
            # a symmetric shape systematic on every process
            w.add_systematic(norm * slope(nb, 0.06).reshape(shape), "shape1", p, ch,
                             groups=["experiment"])
            # a norm systematic (lnN 1.05) on the backgrounds
            if p not in signals:
                w.add_norm_systematic("lumi", p, ch, 1.025, groups=["experiment", "lumi"])
            # as_difference + kfactor on bkg1
            if p == "bkg1":
                w.add_systematic(0.04 * norm * slope(nb, -0.5).reshape(shape), f"bkg1_syst{ich}",
                                 p, ch, as_difference=True, kfactor=0.5, groups=["bkg"])
            # up/down systematic, symmetrised (or not) as requested
            up = norm * slope(nb, 0.08).reshape(shape) * 1.03
            down = norm * slope(nb, -0.03).reshape(shape) * 0.99
            w.add_systematic([up, down], "theory2", p, ch,
                             symmetrize=symmetrize if asym is None else asym,
                             groups=["theory"])
            if p == "bkg1" and symmetrize in ("conservative", "linear", "quadratic"):
                # up and down both upwards, down larger: rabbit's conservative takes logkdown
                # (-ln 1.10), not |logkdown| with the sign of logkup
                w.add_norm_systematic("onesided", p, ch, [1.02, 1.10], symmetrize=symmetrize,
                                      groups=["theory"])
            if p == "bkg2":
                w.add_norm_systematic("xsec_bkg2", p, ch, [1.10, 0.93],
                                      symmetrize=symmetrize if asym is None else asym,
                                      groups=["theory"])
    if masked:
        for p in procnames:
            g = w.dict_norm["gen"][p]
            w.add_systematic(g * 1.04, "theory2", p, "gen")
    if extra:
        extra(w, rng)
    # data: Poisson around the truth (signal strengths in `truth`, systematics nominal)
    for ch, _ in channels:
        shape = chshape[ch]
        exp = expected[ch]
        data = rng.poisson(exp).astype(float)
        data = np.maximum(data, 1.0)  # > 0 everywhere (chi-square fits need it)
        var = data * rng.uniform(1.2, 1.6, size=data.shape) if weighted_data else None
        w.add_data(data.reshape(shape), ch, variances=None if var is None else var.reshape(shape))
        for k in range(npseudo):
            pd = np.maximum(rng.poisson(exp * (1.0 + 0.05 * (k + 1))), 1).astype(float)
            w.add_pseudodata(pd.reshape(shape), f"toy{k}", ch)
    if data_cov:
        nbins = sum(int(np.prod(chshape[ch])) for ch, _ in channels)
        data = np.concatenate([w.dict_data_obs[ch] for ch, _ in channels])
        sd = np.sqrt(data)
        corr = 0.3 ** np.abs(np.subtract.outer(np.arange(nbins), np.arange(nbins)))
        w.add_data_covariance(np.outer(sd, sd) * corr)
    return w


def zero_variance_extra(w, rng):
    """(with mcstat bkg1 = 0) sig and bkg2 without MC variance in the first 3 bins of ch1:
    bins with no Barlow-Beeston parameter at all."""
    w.dict_sumw2["ch1"]["bkg2"][:3] = 0.0
    w.dict_sumw2["ch1"]["sig"][:3] = 0.0


# --- cases ---------------------------------------------------------------------------------------
def case_spec(name):
    """(writer factory kwargs, extra, reference options, covers). Reference options: fit,
    bbstat (type or None), bbstat_mode, poi_positive, data, impacts, postfit (post-fit yields
    with errors: lepus --postfit -o) and extra_fits (further fits of the same file, each a dict
    with its own reference options and optionally expect_warning, a text a lepus warning must
    contain)."""
    S = {}  # build kwargs
    ref = {"fit": "poisson", "bbstat": "gamma", "bbstat_mode": "lite", "poi_positive": False,
           "data": "observed", "impacts": True, "postfit": False}
    extra = None
    covers = ""
    if name == "dense_sym":
        covers = "dense hnorm/hlogk [nbinsfull, nproc, nsyst]; lnN and shape systematics, " \
                 "as_difference, kfactor; symmetrize='average'; groups; BB-lite gamma; impacts"
    elif name == "sparse_sym":
        S["sparse"] = True
        covers = "sparse hnorm_sparse/hlogk_sparse (canonical order, dense_shape), zero nominals"
    elif name in ("dense_asym", "sparse_asym"):
        S["asym"] = None
        S["symmetrize"] = None
        S["sparse"] = name == "sparse_asym"

        def extra(w, rng):  # a down template with zeros and a sign flip: rabbit's ln(1e-3) cutoff
            for ch in ("ch0",):
                norm = w.dict_norm[ch]["bkg1"]
                down = norm * 0.9
                down[2] = 0.0
                down[5] = -0.2 * norm[5]
                w.add_systematic([norm * 1.02, down], "cutoff", "bkg1", ch, symmetrize=None)
        covers = ("asymmetric logk (4-D hlogk / sparse columns nsyst + s = halfdiff), alpha "
                  "interpolation, logk = ln(1e-3) where a template is <= 0 (sign flip or zero)")
    elif name.startswith("symm_"):
        S["symmetrize"] = name[5:]
        covers = f"add_systematic / add_norm_systematic with symmetrize='{name[5:]}'"
        if name[5:] in ("linear", "quadratic"):
            covers += " (two symmetric nuisances <name>SymAvg and <name>SymDiff)"
    elif name == "masked_channel":
        S["masked"] = True
        covers = "masked channel: its rows after the unmasked ones in hnorm/hlogk/hsumw2, no data"
    elif name == "multi_signal":
        S["signals"] = ("sigB", "sigA", "sig10", "sig2")[:3]
        S["truth"] = {"sigB": 1.1, "sigA": 0.9}
        covers = "several signals (hsignals sorted, signals first in hprocs), one POI each"
    elif name in ("free_noi_groups", "noi_constrained"):
        constrained_noi = name == "noi_constrained"

        def extra(w, rng):
            for ch in ("ch0", "ch1"):
                for p in ("sig", "bkg1", "bkg2"):
                    norm = w.dict_norm[ch][p]
                    nb = len(norm)
                    t = (np.arange(nb) + 0.5) / nb
                    # unconstrained nuisances, natural sort: free2 before free10
                    if p == "bkg1":
                        w.add_systematic(norm * (1 + 0.3 * (2 * t - 1) ** 2), "free10", p, ch,
                                         constrained=False, groups=["free"])
                        if ch == "ch0":
                            w.add_norm_systematic("free2", p, ch, 1.1, constrained=False,
                                                  groups=["free"])
                    if p == "sig":
                        w.add_systematic(norm * slope(nb, -0.15), "mass", p, ch, noi=True,
                                         constrained=constrained_noi, groups=["massgroup"])
        covers = ("unconstrained nuisances (hsystsnoconstraint, first in hsysts, natural sort, "
                  "cw = 0), a nuisance of interest "
                  + ("that is constrained (rabbit's stat / binByBinStat impacts of a constrained "
                     "NOI are 0)" if constrained_noi else "that is free")
                  + ", groups with several members")
    elif name in ("normal_systype", "normal_systype_asym"):
        S["systematic_type"] = "normal"
        if name.endswith("asym"):
            S["symmetrize"] = None
        covers = "systematic_type 'normal' (additive logk = up - nom), " + \
                 ("asymmetric" if name.endswith("asym") else "symmetric")
    elif name == "zero_variance":
        S["mcstat"] = (0.08, 0.0, 0.12)  # bkg1 has sumw2 = 0
        extra = zero_variance_extra  # 3 bins with no MC variance at all
        covers = "a zero-variance process mixed with MC-stat processes (beta scales only the " \
                 "others: quadratic profile), bins with no MC variance (betamask)"
    elif name == "bb_normal_multiplicative":
        ref["bbstat"] = "normal-multiplicative"
        covers = "--binByBinStatType normal-multiplicative (lite, Poisson)"
    elif name == "bb_normal_additive":
        ref["bbstat"] = "normal-additive"
        covers = "--binByBinStatType normal-additive (lite, Poisson)"
    elif name == "no_bbstat":
        ref["bbstat"] = None
        covers = "--noBinByBinStat"
    elif name == "poi_positive":
        ref["poi_positive"] = True
        ref["impacts"] = False
        S["truth"] = {"sig": 0.7}
        covers = "rabbit's default POI parametrisation mu = x^2 (lepus --poi-positive); values " \
                 "in mu, errors 2 x sigma_x"
    elif name == "pseudodata":
        S["npseudo"] = 2
        ref["data"] = "toy1"
        covers = "hpseudodata [nbins, npseudo] + hpseudodatanames; fit of the set 'toy1'"
    elif name == "chisq":
        ref["fit"] = "chisq"
        covers = "--chisqFit (variance = the fitted data, not hdata_var), BB-lite gamma"
    elif name == "chisq_nobb":
        ref["fit"] = "chisq"
        ref["bbstat"] = None
        covers = "--chisqFit --noBinByBinStat"
    elif name == "chisq_normal_additive":
        ref["fit"] = "chisq"
        ref["bbstat"] = "normal-additive"
        covers = "--chisqFit --binByBinStatType normal-additive"
    elif name in ("weighted_data_poisson", "weighted_data_chisq"):
        S["weighted_data"] = True
        if name.endswith("chisq"):
            ref["fit"] = "chisq"
        covers = "hdata_var (weighted data, written because it differs from hdata_obs); " + \
                 ("rabbit's --chisqFit still uses the data counts as variance" if
                  name.endswith("chisq") else "ignored by the Poisson fit")
    elif name.startswith("covariance"):
        ref["fit"] = "covariance"
        ref["bbstat"] = "normal-additive"
        S["data_cov"] = True
        if name == "covariance_nobb":
            ref["bbstat"] = None
        elif name == "covariance_normal_multiplicative":
            ref["bbstat"] = "normal-multiplicative"
        elif name.startswith("covariance_bb_full"):
            ref["bbstat_mode"] = "full"
            if name.endswith("multiplicative"):
                ref["bbstat"] = "normal-multiplicative"
                ref["postfit"] = True  # the betas' spread couples the bins through W
        elif name == "covariance_bbstat_in_cov":
            S["add_bbb_cov"] = True
            ref["bbstat"] = None
        elif name == "covariance_syst_in_cov":
            S["data_cov"] = False  # rabbit starts from diag(data_var)

            def extra(w, rng):
                for ch in ("ch0", "ch1"):
                    for p in ("bkg1", "bkg2"):
                        norm = w.dict_norm[ch][p]
                        w.add_systematic(norm * slope(len(norm), 0.2), "covsyst", p, ch,
                                         add_to_data_covariance=True)
        covers = {"covariance": "hdata_cov_inv from add_data_covariance, --covarianceFit, BB "
                                "normal-additive (automatic)",
                  "covariance_nobb": "--covarianceFit --noBinByBinStat",
                  "covariance_normal_multiplicative": "--covarianceFit --binByBinStatType "
                                                      "normal-multiplicative",
                  "covariance_bb_full": "--covarianceFit --binByBinStatMode full (automatic: "
                                        "normal-additive), rabbit's coupled linear system",
                  "covariance_bb_full_normal_multiplicative":
                      "--covarianceFit --binByBinStatMode full --binByBinStatType "
                      "normal-multiplicative: (diag(S) W + 1) L = diag(S) W n + L0",
                  "covariance_bbstat_in_cov": "add_bin_by_bin_stat_to_data_cov (diag sumw2 in "
                                              "the covariance), fitted with --noBinByBinStat",
                  "covariance_syst_in_cov": "add_systematic(add_to_data_covariance=True): a "
                                            "'normal' shift vector v added as v v^T to the "
                                            "covariance (not a fit parameter)"}[name]
    elif name.startswith("external"):
        kind = name[9:]

        def extra(w, rng):
            params = ["shape1", "theory2", "sig"]
            g = np.array([0.3, -0.2, 0.1])
            Hd = np.array([[2.0, 0.5, 0.0], [0.5, 1.5, 0.2], [0.0, 0.2, 30.0]])
            if kind == "dense":
                w.add_external_likelihood_term(params, grad=g, hess_dense=Hd, name="prior")
            elif kind == "sparse":
                rows, cols = np.nonzero(Hd)
                order = np.argsort(-rows * 10 - cols)  # not canonical: the writer sorts
                w.add_external_likelihood_term(params, grad=g, hess_sparse=(
                    rows[order], cols[order], Hd[rows, cols][order]), name="prior")
                w.add_external_likelihood_term(["lumi"], hess_dense=[[4.0]], name="lumi_prior")
            else:
                w.add_external_likelihood_term(params, grad=g, name="pull")
        covers = {"dense": "external_terms/<name>/{params, grad_values, hess_dense}",
                  "sparse": "external_terms with hess_sparse (canonical order) and a Hessian-only "
                            "term",
                  "grad_only": "external_terms with grad_values only"}[kind]
    elif name in ("bb_full", "chisq_bb_full"):
        ref["bbstat"] = "normal-multiplicative"  # rabbit's automatic type in full mode
        ref["bbstat_mode"] = "full"
        if name.startswith("chisq"):
            ref["fit"] = "chisq"
        covers = ("--chisqFit " if name.startswith("chisq") else "") + \
            "--binByBinStatMode full: one beta per (bin, process), k = hsumw^2 / sumw2; " \
            "automatic type = normal-multiplicative, profiled per bin in rabbit's closed form"
    elif name in ("bb_full_gamma", "chisq_bb_full_gamma", "bb_full_normal_additive"):
        ref["bbstat"] = "normal-additive" if name.endswith("additive") else "gamma"
        ref["bbstat_mode"] = "full"
        if name.startswith("chisq"):
            ref["fit"] = "chisq"
        S["mcstat"] = (0.08, 0.0, 0.12)  # bkg1 has sumw2 = 0: no beta for it
        extra = zero_variance_extra  # and 3 bins without any beta
        covers = ("--chisqFit " if name.startswith("chisq") else "") + \
            "--binByBinStatMode full --binByBinStatType " + ref["bbstat"] + \
            (" (exact joint minimum per bin: a scalar equation; rabbit: Newton, 'experimental')"
             if ref["bbstat"] == "gamma" else " (yield n + sqrt(sumw2) beta per process)") + \
            "; zero-variance entries without a beta (bkg1 everywhere, every process in 3 bins)"
    elif name == "beta_variations":
        S["masked"] = True
        ref["bbstat"] = "normal-multiplicative"
        ref["bbstat_mode"] = "full"
        ref["impacts"] = False
        ref["postfit"] = True
        ref["extra_fits"] = [
            # the same betas applied with the gamma profile
            {**ref, "bbstat": "gamma", "extra_fits": None},
            # normal-additive: rabbit applies no beta variations (lepus warns)
            {**ref, "bbstat": "normal-additive", "extra_fits": None,
             "expect_warning": "hbetavariations"},
            # lite: ignored entirely, lepus warns that they have no effect
            {**ref, "bbstat": "gamma", "bbstat_mode": "lite", "postfit": False,
             "extra_fits": None, "expect_warning": "hbetavariations"},
        ]

        def extra(w, rng):
            # sig without MC variance in two source bins: no beta there (dbeta = 0)
            w.dict_sumw2["ch0"]["sig"][5:7] = 0.0
            g = {p: w.dict_norm["gen"][p] for p in ("sig", "bkg1", "bkg2")}
            for p, src in (("sig", "ch0"), ("bkg1", "ch0"), ("bkg2", "ch1")):
                nsrc = w.nbinschan[src]
                v = 0.03 * g[p][:, None] * rng.uniform(-1.0, 1.0, size=(5, nsrc))
                w.add_beta_variations(v, p, src, "gen")
        covers = "hbetavariations [nbinsfull, nbins, nproc] (add_beta_variations from ch0 and " \
                 "ch1 into the masked gen channel): rabbit's binByBinStatMode full applies them " \
                 "to the reported yields (never to the NLL); post-fit yields and errors of " \
                 "every bin and process (normal-multiplicative; also gamma, normal-additive " \
                 "without them, and a lite fit that ignores them)"
    else:
        raise KeyError(name)
    return S, extra, ref, covers


def lepus_flags(ref):
    flags = []
    if ref["bbstat"] is None:
        flags.append("--no-bbstat")
    mode = ref.get("bbstat_mode", "lite")
    automatic = reference.automatic_bbstat(ref["fit"], mode)
    if ref["bbstat"] is not None and mode != "lite":
        flags += ["--bin-by-bin-stat-mode", mode]
    if ref["bbstat"] is not None and ref["bbstat"] != automatic:
        flags += ["--bin-by-bin-stat-type", ref["bbstat"]]
    if ref["fit"] == "chisq":
        flags.append("--chisq-fit")
    elif ref["fit"] == "covariance":
        flags.append("--covariance-fit")
    if ref["poi_positive"]:
        flags.append("--poi-positive")
    if ref["data"] != "observed":
        flags += ["--pseudodata", ref["data"]]
    if ref["impacts"]:
        flags.append("--impacts")
    return flags


def make_case(name, outdir, seed):
    rng = np.random.default_rng(seed)
    S, extra, ref, covers = case_spec(name)
    w = build(name, rng, extra=extra, **S)
    path = os.path.join(outdir, f"{name}.hdf5")
    meta_info = {"command": f"make_corpus.py OUTDIR {name}", "case": name}
    w.write(path, meta_data_dict={"meta_info": meta_info}, meta_compression=META_COMPRESSION)
    model = reference.Model(path)  # systematic_type from the pickled meta, as rabbit reads it
    if model.systematic_type != w.systematic_type:
        raise RuntimeError(f"{name}: reference read systematic_type {model.systematic_type}")
    res = reference_fit(model, ref)
    extra_fits = []
    for xref in ref.get("extra_fits") or []:
        warn = xref.get("expect_warning")
        xref = {k: v for k, v in xref.items() if k not in ("extra_fits", "expect_warning")}
        extra_fits.append({"options": lepus_flags(xref), "reference": xref,
                           **({"expect_warning": warn} if warn else {}),
                           **reference_fit(model, xref)})
    ref = {k: v for k, v in ref.items() if k != "extra_fits"}
    # Cases lepus refuses today (a message, non-zero exit): the reference result is kept so that
    # the case becomes a comparison once lepus supports it (remove it from LEPUS_REFUSES then).
    refuses = LEPUS_REFUSES.get(name)
    return {"file": f"{name}.hdf5", "covers": covers, "options": lepus_flags(ref),
            **({"lepus_refuses": refuses} if refuses else {}),
            "reference": ref, "systematic_type": w.systematic_type,
            "channels": w.channel_summary(), "meta_info": meta_info,
            "meta_filter": META_COMPRESSION, **res,
            **({"extra_fits": extra_fits} if extra_fits else {})}


def reference_fit(model, ref):
    lik = reference.Likelihood(model, data=ref["data"], fit=ref["fit"], bbstat=ref["bbstat"],
                               poi_positive=ref["poi_positive"],
                               bbstat_mode=ref.get("bbstat_mode", "lite"))
    res = lik.fit_result(impacts=ref["impacts"], postfit=ref.get("postfit", False))
    res.pop("beta", None)
    return res


# Options rabbit offers that lepus does not implement yet: the message lepus must give.
LEPUS_REFUSES = {}

# wums compresses meta/pickle_data with Blosc (HDF5 filter 32001); h5py writes it through
# Debian's plugin (hdf5-filter-plugin-blosc-serial). Without it: gzip, with a note.
META_COMPRESSION = "blosc"


def main():
    global META_COMPRESSION
    import h5py
    if not h5py.h5z.filter_avail(32001):
        META_COMPRESSION = "gzip"
        print("make_corpus: note: the Blosc filter plugin (32001) is not available to h5py; "
              "meta/pickle_data is gzip-compressed instead (wums uses Blosc)")
    outdir = sys.argv[1]
    only = sys.argv[2:] or CASES
    os.makedirs(outdir, exist_ok=True)
    expected = {}
    path = os.path.join(outdir, "expected.json")
    if sys.argv[2:] and os.path.exists(path):  # a subset updates an existing expected.json
        with open(path) as f:
            expected = json.load(f)
    for i, name in enumerate(CASES):
        if name in only:
            expected[name] = make_case(name, outdir, seed=1000 + i)
    tmp = os.path.join(outdir, "expected.json.tmp")
    with open(tmp, "w") as f:
        json.dump(expected, f, indent=1, sort_keys=False)
    os.replace(tmp, path)
    print(f"make_corpus: {len(expected)} cases written to {outdir}")


if __name__ == "__main__":
    main()
