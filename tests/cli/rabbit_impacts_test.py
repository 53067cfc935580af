#!/usr/bin/python3
"""rabbit_impacts_test.py LEPUS TMPDIR: lepus's impacts against rabbit's definitions, recomputed
independently with numpy (no lepus code).

A small model in rabbit's tensor layout (6 bins, 2 processes with MC-stat sumw2, one signal
strength, 2 unconstrained nuisances first as rabbit orders them - one of them a nuisance of
interest -, 5 constrained ones in 2 groups, one of them a constrained NOI and one with prior
width 3 that the data constrain) is written with h5py and fitted by
`lepus fit --global-impacts --json`, with and without bin-by-bin statistics. This script re-derives the NLL (Poisson with the saturated offset,
Gaussian constraints, Barlow-Beeston-lite gamma term with the analytic profiled beta), finds the
minimum by Newton iterations on the analytic gradient and Hessian (the Hessians are checked
against central finite differences of the analytic gradient), and computes rabbit's quantities
exactly as rabbit/fitter.py and rabbit/impacts/{traditional,global}_impacts.py do:

  impacts         C_ij / sqrt(C_jj)                       (lepus: impacts.nominal)
  impacts_grouped groups: sqrt(v_g^T C_g^-1 v_g); stat = sqrt(diag inv(H_nobbb[:nstat,:nstat]));
                  binByBinStat = sqrt(relu(diag(inv(H[:nstat,:nstat]) - inv(H_nobbb[:nstat,:nstat]))))
                  with nstat = npoi + nsystnoconstraint, NOIs beyond nstat masked to 0
                                                          (lepus: impacts.grouped_nominal)
  global_impacts / gaussian_global_impacts (per nuisance sqrt(cw_j) C_ji; data
                  sqrt(sum_b n_b (C d2L/dx dn_b)^2) or the remainder; beta0 with var 1/k_b)
                                                          (lepus: impacts.global,
                  impacts.rabbit_global_grouped, impacts.rabbit_gaussian_global_grouped)

and lepus's own documented quantities (binByBinStat_fullcov, global with sigma^2(beta0) = beta/k,
global_data, global_bbstat). Tolerance: the Hessians here are analytic and the minimum is
converged to max |g| < 1e-11, so the only differences are rounding and lepus's own convergence
(its EDM): measured 4e-8 relative at most; 1e-6 relative (plus 1e-9 absolute for quantities that
vanish) leaves a margin of 20 and is far below any definitional difference (the full-covariance
binByBinStat differs by a factor 2 for the free NOI here, the global beta0 conventions by
sqrt(beta_b), a few percent).
"""
import json
import os
import subprocess
import sys

import h5py
import numpy as np

RTOL, ATOL = 1e-6, 1e-9

lepus, tmp = sys.argv[1], sys.argv[2]
os.makedirs(tmp, exist_ok=True)

# ---- the model ---------------------------------------------------------------------------------
nbins, procs = 6, ["sig", "bkg"]
systs = ["free_a", "free_b", "c1", "c2", "c3", "c4", "c5"]  # unconstrained first (rabbit's order)
noconstraint = ["free_a", "free_b"]
cw = np.array([0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0 / 3.0**2])
noiidxs = np.array([0, 4], dtype=np.int32)  # free_a (unconstrained) and c3 (constrained)
groups = {"gA": [2, 3], "gB": [1, 4, 5, 6]}   # gB mixes free_b with constrained ones

b = np.arange(nbins)
norm = np.stack([300.0 * np.exp(-0.5 * ((b - 2.5) / 1.3) ** 2) + 20.0,
                 400.0 - 30.0 * b], axis=1)
sumw2 = np.stack([norm[:, 0] * 1.5, norm[:, 1] * 2.0], axis=1)  # k_b ~ half the data count
logk = np.zeros((nbins, 2, len(systs)))
logk[:, 0, 0] = 0.04 * (b - 2.5)            # free_a: signal shape (a "mass shift")
logk[:, 1, 1] = 0.10                        # free_b: background normalisation
logk[:, 1, 1] += 0.02 * (b - 2.5) / 2.5     #   with a little shape
logk[:, 0, 2] = 0.20                        # c1: signal normalisation
logk[:, 1, 2] = 0.03
logk[:, 1, 3] = -0.30 * (b - 2.5) / 2.5     # c2: background slope, fixed by the data
logk[:, 0, 4] = 0.03 * np.cos(b)            # c3 (NOI, constrained)
logk[:, :, 5] = 0.02                        # c4: luminosity-like
logk[:, 1, 6] = 0.40 * (b % 2 - 0.5)        # c5: prior width 3, fixed by the data,
logk[:, 0, 6] = 0.15 * (b - 2.5) / 2.5     #   correlated with the signal
rng = np.random.RandomState(7)
data = rng.poisson(norm.sum(axis=1) * np.exp(0.08 * (b - 2.5) / 2.5)).astype(float)


def write_input(path):
    s = h5py.string_dtype()
    with h5py.File(path, "w") as f:
        def arr(name, a, dtype=np.float64):
            a = np.asarray(a, dtype=dtype)
            d = f.create_dataset(name, data=a.reshape(-1))
            d.attrs["original_shape"] = np.array(a.shape, dtype=np.int64)
        f.create_dataset("hprocs", data=np.array(procs, dtype=object), dtype=s)
        f.create_dataset("hsignals", data=np.array(["sig"], dtype=object), dtype=s)
        f.create_dataset("hsysts", data=np.array(systs, dtype=object), dtype=s)
        f.create_dataset("hsystsnoconstraint", data=np.array(noconstraint, dtype=object), dtype=s)
        f.create_dataset("hsystgroups", data=np.array(list(groups), dtype=object), dtype=s)
        g = f.create_dataset("hsystgroupidxs", (len(groups),), dtype=h5py.vlen_dtype(np.int32))
        for i, members in enumerate(groups.values()):
            g[i] = np.array(members, dtype=np.int32)
        arr("hnoiidxs", noiidxs, np.int32)
        arr("hconstraintweights", cw)
        arr("hdata_obs", data)
        arr("hnorm", norm)
        arr("hsumw", norm)
        arr("hsumw2", sumw2)
        arr("hlogk", logk)
        arr("hpseudodata", np.zeros((nbins, 0)))
        f.create_dataset("hpseudodatanames", data=np.array([], dtype=object), dtype=s)


# ---- the likelihood (parameters x = [mu, theta]) -----------------------------------------------
npoi, nsyst = 1, len(systs)
npar = npoi + nsyst
kstat = norm.sum(axis=1) ** 2 / sumw2.sum(axis=1)


def yields(x):
    """lambda_b and dlambda_b/dx [nbins x npar], d2lambda_b/dx2 [nbins x npar x npar]."""
    mu, theta = x[0], x[1:]
    e = np.exp(logk @ theta)                   # [nbins, nproc]
    lam_p = norm * e * np.array([mu, 1.0])
    lam = lam_p.sum(axis=1)
    # dlambda[b,p]/dx: d/dmu = norm e (signal only); d/dtheta_s = lam_p logk_s
    dlp = np.zeros((nbins, 2, npar))
    dlp[:, 0, 0] = norm[:, 0] * e[:, 0]
    dlp[:, :, 1:] = lam_p[:, :, None] * logk
    d2lp = np.zeros((nbins, 2, npar, npar))
    d2lp[:, :, 1:, 1:] = lam_p[:, :, None, None] * logk[:, :, :, None] * logk[:, :, None, :]
    d2lp[:, 0, 0, 1:] = d2lp[:, 0, 1:, 0] = norm[:, 0, None] * e[:, 0, None] * logk[:, 0, :]
    return lam, dlp.sum(axis=1), d2lp.sum(axis=1)


def profiled_beta(lam, n, beta0, bb):
    return (n + kstat * beta0) / (lam + kstat) if bb else np.ones(nbins)


def nll(x, n, beta0, bb, beta=None):
    lam, _, _ = yields(x)
    if beta is None:
        beta = profiled_beta(lam, n, beta0, bb)
    mu_l = beta * lam
    if np.any(mu_l <= 0) or np.any(beta <= 0):
        return np.inf  # outside the domain (a trial step of the line search)
    v = np.sum(mu_l - n + n * (np.log(n) - np.log(mu_l)))
    v += 0.5 * np.sum(cw * x[1:] ** 2)
    if bb:
        v += np.sum(-kstat * beta0 * np.log(beta) + kstat * (beta - beta0))
    return v


def gradient(x, n, beta0, bb, beta=None):
    """Analytic gradient; with beta=None beta is profiled (envelope theorem), else held fixed."""
    lam, dl, _ = yields(x)
    if beta is None:
        beta = profiled_beta(lam, n, beta0, bb)
    g = dl.T @ (beta - n / lam)
    g[1:] += cw * x[1:]
    return g


def hessians(x, n, beta0, bb):
    """(H profiled, H with beta fixed at its profiled value), analytic."""
    lam, dl, d2l = yields(x)
    beta = profiled_beta(lam, n, beta0, bb)
    a = beta - n / lam
    hfix = np.einsum("b,bij->ij", a, d2l) + dl.T @ ((n / lam**2)[:, None] * dl)
    hfix[1:, 1:] += np.diag(cw)
    if not bb:
        return hfix, hfix
    # Schur complement of the beta block: d2L/dx dbeta_b = dlambda_b/dx,
    # d2L/dbeta_b^2 = n_b/beta^2 + k_b beta0_b/beta^2.
    hbb = (n + kstat * beta0) / beta**2
    hprof = hfix - dl.T @ ((1.0 / hbb)[:, None] * dl)
    return hprof, hfix


def mixed(x, n, beta0, bb):
    """d2NLL/dx dn_b and d2NLL/dx dbeta0_b of the profiled NLL [npar x nbins], analytic."""
    lam, dl, _ = yields(x)
    dbeta_dn = 1.0 / (lam + kstat) if bb else np.zeros(nbins)
    dbeta_dbeta0 = kstat / (lam + kstat) if bb else np.zeros(nbins)
    return dl.T * (dbeta_dn - 1.0 / lam), dl.T * dbeta_dbeta0


def minimise(bb):
    x = np.zeros(npar)
    x[0] = 1.0
    beta0 = np.ones(nbins)
    for _ in range(200):  # Newton with backtracking (Levenberg damping where H is indefinite)
        g = gradient(x, data, beta0, bb)
        if np.max(np.abs(g)) < 1e-11:
            break
        h, _ = hessians(x, data, beta0, bb)
        lm = 0.0
        while np.linalg.eigvalsh(h + lm * np.eye(npar))[0] <= 0:
            lm = max(2 * lm, 1e-3)
        step = np.linalg.solve(h + lm * np.eye(npar), g)
        f0, t = nll(x, data, beta0, bb), 1.0
        while not nll(x - t * step, data, beta0, bb) <= f0 + 1e-12 * abs(f0) and t > 1e-8:
            t /= 2
        x = x - t * step
    assert np.max(np.abs(gradient(x, data, beta0, bb))) < 1e-10, "no convergence"
    return x


def check_derivatives(x, bb):
    """The analytic Hessians and mixed derivatives against central differences of the gradient."""
    beta0 = np.ones(nbins)
    hprof, hfix = hessians(x, data, beta0, bb)
    lam, _, _ = yields(x)
    beta = profiled_beta(lam, data, beta0, bb)
    for h_an, fixed in ((hprof, None), (hfix, beta)):
        h_fd = np.zeros((npar, npar))
        for j in range(npar):
            e = np.zeros(npar)
            e[j] = 1e-5
            h_fd[:, j] = (gradient(x + e, data, beta0, bb, fixed) -
                          gradient(x - e, data, beta0, bb, fixed)) / 2e-5
        assert np.allclose(h_an, h_fd, rtol=1e-6, atol=1e-6 * np.abs(h_an).max()), "Hessian FD"
    dn, db0 = mixed(x, data, beta0, bb)
    for bin_ in range(nbins):
        e = np.zeros(nbins)
        e[bin_] = 1e-4
        fd_n = (gradient(x, data + e, beta0, bb) - gradient(x, data - e, beta0, bb)) / 2e-4
        fd_b = (gradient(x, data, beta0 + e, bb) - gradient(x, data, beta0 - e, bb)) / 2e-4
        assert np.allclose(dn[:, bin_], fd_n, rtol=1e-6, atol=1e-9), "d2L/dx dn FD"
        assert np.allclose(db0[:, bin_], fd_b, rtol=1e-6, atol=1e-9), "d2L/dx dbeta0 FD"


# ---- rabbit's quantities -----------------------------------------------------------------------
def rabbit_impacts(bb):
    x = minimise(bb)
    check_derivatives(x, bb)
    beta0 = np.ones(nbins)
    hess, hess_nobbb = hessians(x, data, beta0, bb)
    cov = np.linalg.inv(hess)
    rows = np.concatenate([np.arange(npoi), npoi + noiidxs])  # POIs then NOIs
    names = ["sig"] + [systs[i] for i in noiidxs]
    out = {"x": x, "cov": cov, "names": names}
    # traditional_impacts.impacts_parms
    sigma = np.sqrt(np.diag(cov))
    out["impacts"] = cov[rows] / sigma[None, :]
    nstat = npoi + len(noconstraint)

    def gather(v):  # _gather_poi_noi_vector with the mask for NOIs beyond the stat block
        vv = np.zeros(len(rows))
        vv[:npoi] = v[:npoi]
        for k, i in enumerate(noiidxs):
            vv[npoi + k] = v[npoi + i] if i < len(v) - npoi else 0.0
        return vv

    cov_stat = np.linalg.inv(hess[:nstat, :nstat])
    grouped = {}
    for gname, members in groups.items():
        idx = npoi + np.array(members)
        v = cov[rows][:, idx]
        cg = cov[np.ix_(idx, idx)]
        grouped[gname] = np.sqrt(np.einsum("ij,ji->i", v, np.linalg.solve(cg, v.T)))
    if bb:
        cov_stat_no_bbb = np.linalg.inv(hess_nobbb[:nstat, :nstat])
        grouped["stat"] = gather(np.sqrt(np.diag(cov_stat_no_bbb)))
        grouped["binByBinStat"] = np.sqrt(np.maximum(gather(np.diag(cov_stat - cov_stat_no_bbb)), 0))
    else:
        grouped["stat"] = gather(np.sqrt(np.diag(cov_stat)))
    out["grouped"] = grouped
    # lepus's binByBinStat_fullcov: sqrt(C_ii - C_ii[beta fixed]), all parameters floating
    if bb:
        cov_nobbb = np.linalg.inv(hess_nobbb)
        out["bbstat_fullcov"] = np.sqrt(np.diag(cov)[rows] - np.diag(cov_nobbb)[rows])
    # global impacts: dx/dg = -C d2L/dx dg
    dn, db0 = mixed(x, data, beta0, bb)
    dxdn = -(cov @ dn)[rows]
    dxdb0 = -(cov @ db0)[rows]
    lam, _, _ = yields(x)
    beta = profiled_beta(lam, data, beta0, bb)
    glob_x0 = cov[rows] * np.sqrt(np.concatenate([np.zeros(npoi), cw]))[None, :]
    out["global"] = glob_x0
    out["global_data"] = dxdn * np.sqrt(data)[None, :]
    var_total = np.diag(cov)[rows]
    var_x0 = np.sum(glob_x0**2, axis=1)
    gg = {g: np.sqrt(np.sum(glob_x0[:, npoi + np.array(m)] ** 2, axis=1)) for g, m in groups.items()}
    rabbit_g, rabbit_gauss = dict(gg), dict(gg)
    lepus_g = dict(gg)
    data_stat = np.sqrt(np.sum(out["global_data"] ** 2, axis=1))
    rabbit_gauss["stat"] = data_stat  # gaussian: explicit sum_b n_b (dx/dn_b)^2
    lepus_g["stat"] = data_stat
    if bb:
        # rabbit: sqrt(d2 L_beta / dbeta^2) = sqrt(k beta0) / beta times dbeta/dx . C c; the
        # gaussian variant: dx/dbeta0 with var(beta0) = 1/k. Both the same number:
        imp_b0 = dxdb0 / np.sqrt(kstat)[None, :]
        dbeta_dx = (-(data + kstat) / (lam + kstat) ** 2)[:, None] * yields(x)[1]
        imp_b0_lik = (np.sqrt(kstat) / beta)[None, :] * (cov @ dbeta_dx.T)[rows]
        assert np.allclose(imp_b0, imp_b0_lik, rtol=1e-10, atol=1e-14), "rabbit beta0 variants"
        var_b0 = np.sum(imp_b0**2, axis=1)
        rabbit_g["binByBinStat"] = rabbit_gauss["binByBinStat"] = np.sqrt(var_b0)
        with np.errstate(invalid="ignore"):  # rabbit takes the root as it is: NaN when negative
            rabbit_g["stat"] = np.sqrt(var_total - var_x0 - var_b0)
        # lepus's (the project reference's) sigma^2(beta0_b) = beta_b / k_b
        out["global_bbstat"] = dxdb0 * np.sqrt(beta / kstat)[None, :]
        lepus_g["binByBinStat"] = np.sqrt(np.sum(out["global_bbstat"] ** 2, axis=1))
    else:
        with np.errstate(invalid="ignore"):
            rabbit_g["stat"] = np.sqrt(var_total - var_x0)
    out["rabbit_global_grouped"] = rabbit_g
    out["rabbit_gaussian_global_grouped"] = rabbit_gauss
    out["grouped_global"] = lepus_g
    return out


# ---- comparison --------------------------------------------------------------------------------
failures = []
checked = 0
worst = [0.0]


def close(what, got, want):
    global checked
    checked += 1
    if got is None and np.isnan(want):  # JSON null = NaN (a negative remainder under the root)
        return
    worst[0] = max(worst[0], abs(got - want) / max(abs(want), ATOL)) if got is not None else worst[0]
    if got is None or not (abs(got - want) <= ATOL + RTOL * abs(want)):
        failures.append(f"{what}: lepus {got!r}, rabbit definition {want!r}")


def run(bb):
    path = f"{tmp}/model.hdf5"
    write_input(path)
    out_json = f"{tmp}/fit_{'bb' if bb else 'nobb'}.json"
    cmd = [lepus, "fit", path, "--global-impacts", "--json", out_json] + ([] if bb else ["--no-bbstat"])
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        print(p.stderr)
        sys.exit(f"FAIL: {' '.join(cmd)} exited {p.returncode}")
    j = json.load(open(out_json))
    im = j["impacts"]
    r = rabbit_impacts(bb)
    tag = "bb" if bb else "nobb"
    params = {q["name"]: q for q in j["parameters"]}
    for i, name in enumerate(["sig"] + systs):
        close(f"{tag} value {name}", params[name]["value"], r["x"][i])
        close(f"{tag} error {name}", params[name]["error"], np.sqrt(r["cov"][i, i]))
    assert im["targets"] == r["names"], im["targets"]
    for k, t in enumerate(r["names"]):
        close(f"{tag} total {t}", im["total"][t], np.sqrt(r["cov"][npoi + noiidxs[k - 1] if k else 0,
                                                                  npoi + noiidxs[k - 1] if k else 0]))
        for i, src in enumerate(["sig"] + systs):
            if src != t:
                close(f"{tag} impacts[{t}][{src}]", im["nominal"][t][src], r["impacts"][k, i])
                close(f"{tag} global[{t}][{src}]", im["global"][t].get(src, 0.0), r["global"][k, i])
        if set(im["grouped_nominal"][t]) != set(r["grouped"]):
            failures.append(f"{tag} groups of {t}: {sorted(im['grouped_nominal'][t])}")
        for g, v in r["grouped"].items():
            close(f"{tag} impacts_grouped[{t}][{g}]", im["grouped_nominal"][t][g], v[k])
        if bb:
            close(f"{tag} binByBinStat_fullcov[{t}]", im.get("binByBinStat_fullcov", {}).get(t), r["bbstat_fullcov"][k])
            for bin_ in range(nbins):
                close(f"{tag} global_bbstat[{t}][{bin_}]", im["global_bbstat"][t][bin_],
                      r["global_bbstat"][k, bin_])
        else:
            assert "binByBinStat_fullcov" not in im
        for bin_ in range(nbins):
            close(f"{tag} global_data[{t}][{bin_}]", im["global_data"][t][bin_], r["global_data"][k, bin_])
        for key in ("grouped_global", "rabbit_global_grouped", "rabbit_gaussian_global_grouped"):
            for g, v in r[key].items():
                close(f"{tag} {key}[{t}][{g}]", im.get(key, {}).get(t, {}).get(g), v[k])
    return r


r_bb = run(True)
run(False)
# The model must exercise the difference: rabbit's binByBinStat of the free NOI is not the
# full-covariance difference (the data-constrained c5 floats in one, is fixed in the other).
bbb, full = r_bb["grouped"]["binByBinStat"][1], r_bb["bbstat_fullcov"][1]
print(f"free_a binByBinStat: rabbit {bbb:.6g}, full-covariance difference {full:.6g}; "
      f"POI {r_bb['grouped']['binByBinStat'][0]:.6g} / {r_bb['bbstat_fullcov'][0]:.6g}; "
      f"constrained NOI c3: stat {r_bb['grouped']['stat'][2]:.3g}")
if not abs(bbb - full) > 0.2 * full:
    failures.append("the test model does not separate binByBinStat from binByBinStat_fullcov")
if failures:
    print("\n".join("FAIL: " + f for f in failures))
    sys.exit(1)
print(f"ok ({checked} quantities within {RTOL:g} relative; largest relative difference {worst[0]:.2g})")
