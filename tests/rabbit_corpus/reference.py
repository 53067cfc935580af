"""An independent numpy/scipy implementation of rabbit's likelihood (github.com/WMass/rabbit,
rabbit/fitter.py, rabbit/bbstat/bbstat.py, rabbit/external_likelihood.py,
rabbit/impacts/traditional_impacts.py, read at commit 948a94a) for files in its tensor layout.

It reads the HDF5 file itself (dense or sparse) and never calls lepus. The systematic type comes
from rabbit's pickled `meta` group (read_rabbit_meta; log_normal without it, as in rabbit), the
rest from the datasets, so any rabbit-layout file h5py can read (filters: gzip, and those of
installed plugins, e.g. Blosc 32001; not Blosc2) can be fitted. Command line:

    reference.py FILE [--fit poisson|chisq|covariance] [--bbstat gamma|normal-multiplicative|
                 normal-additive|none] [--bbstat-mode lite|full] [--poi-positive]
                 [--data observed|NAME] [--impacts] [--postfit] [--json OUT]

prints (or writes) the fit result as make_corpus.py records it (parameters, nll, edm, impacts,
with --postfit the post-fit yields). Defaults: Poisson, BB lite, type gamma (normal-additive
with --fit covariance, normal-multiplicative with --bbstat-mode full), mu = x, observed data.
Definitions (x = rabbit's internal parameter vector [POIs; systematics in hsysts order]):

  mu_p = x_p (rabbit --allowNegativeParam) or x_p^2 (rabbit's default; lepus --poi-positive)
  e_bps = theta_s (logkavg_bps + alpha(theta_s) logkhalfdiff_bps),
      alpha(t) = clip(u (3u^4 - 10u^2 + 15) / 8, -1, 1), u = 2t
  log_normal: n_bp = r_p norm_bp exp(sum_s e_bps);   normal: n_bp = r_p norm_bp + sum_s e_bps
      (r_p = mu_p for signals, 1 for backgrounds)
  data terms (nexp = per-bin yield after Barlow-Beeston):
      Poisson (offset form): sum_b -n_b (log nexp_b - log n_b) + nexp_b - n_b   (log n_b := 0 at 0)
      chisq (--chisqFit):    1/2 sum_b (nexp_b - n_b)^2 / n_b   (variance = the fitted data set:
                             rabbit_fit.py calls set_nobs(data_values) without variances, so
                             hdata_var is NOT used by observed or pseudodata fits)
      covariance fit:        1/2 (n - nexp)^T hdata_cov_inv (n - nexp)
  constraints: sum_s cw_s/2 theta_s^2
  Barlow-Beeston lite (one beta per bin, profiled in closed form as in bbstat.py):
      active processes: sumw2 > 0; A_b = sum of their yields, Z_b = sum of the others;
      varbeta_b = sum_p sumw2_bp; S_b = sum of hsumw over the active processes;
      betamask_b = varbeta_b == 0 or S_b == 0; k_b = S_b^2 / varbeta_b (1 where masked)
      gamma / normal-multiplicative: nexp = beta A + Z (A + Z where masked), beta0 = 1,
         gamma:   lbeta = sum_b k_b (beta_b - 1) - k_b log beta_b
         n-mult:  lbeta = sum_b k_b/2 (beta_b - 1)^2 (0 where masked)
      normal-additive: nexp = A + Z + sqrt(varbeta) beta, beta0 = 0, lbeta = sum_b beta_b^2 / 2
  Barlow-Beeston full (rabbit --binByBinStatMode full: one beta per fitted bin and process;
  Poisson, chisq and the covariance fit):
      gamma / normal-multiplicative: active (b, p) = sumw2_bp > 0 and hsumw_bp != 0 (rabbit's
         betamask excludes the rest), k_bp = hsumw_bp^2 / sumw2_bp, beta0 = 1;
         nexp_b = sum_p beta_bp n_bp (beta_bp = 1 where not active);
         gamma:   lbeta = sum_bp k_bp (beta_bp - 1) - k_bp log beta_bp   (active entries)
         n-mult:  lbeta = sum_bp k_bp/2 (beta_bp - 1)^2                 (active entries)
      normal-additive: nexp_b = sum_p n_bp + sqrt(sumw2_bp) beta_bp, beta0 = 0,
         lbeta = sum_bp beta_bp^2 / 2 (beta_bp = 0 where sumw2_bp = 0)
      profile: with t_b = D'(nexp_b) (Poisson D' = 1 - n/nexp, chisq D' = (nexp - n)/v, v = n),
         dNLL/dbeta_bp = 0 gives beta_bp = 1 - t_b n_bp / k_bp (n-mult),
         beta_bp = -t_b sqrt(sumw2_bp) (n-add): nexp_b = L0_b - t_b S_b with L0_b = sum_p n_bp and
         S_b = sum_active n_bp^2 / k_bp (n-mult) or sum_p sumw2_bp (n-add), a quadratic (Poisson)
         or linear (chisq) equation for nexp_b, rabbit's closed forms in bbstat.py;
         gamma: beta_bp = k_bp / (k_bp + t_b n_bp), and t_b solves the scalar equation
         t = D'(Z_b + sum_active n_bp k_bp / (k_bp + t n_bp)) (increasing in t, one root with all
         beta > 0), found to machine precision by a bracketed Newton iteration (bisection where
         Newton leaves the bracket); rabbit solves the same minimum with Newton steps in
         log(nexp - threshold) ("experimental").
      reported yields (--postfit; rabbit's profile_and_apply with full=True): per (bin, process)
         n_ip (1 + sum_j V_ijp sqrt(k_jp) (beta_jp - 1) / norm_ip) where norm_ip (the nominal
         hnorm) > 0 (V = hbetavariations [nbinsfull, nbins, nproc], the beta term 0 where not
         active; gamma / n-mult only), times beta_ip in fitted bins; n-add: n_ip + sqrt(sumw2_ip)
         beta_ip. Their errors are sqrt(J C J^T + g^T H_bb^-1 g): J the Richardson-extrapolated
         central difference (h = 1e-3, 5e-4) of these yields in x with beta re-profiled at every
         point; g the central difference of the yields in the active betas at fixed x, H_bb the
         central second difference (h = 1e-3) of the NLL in the active betas at fixed x (rabbit's
         postfit variance with profiled betas, `_expected_with_variance`; exact inverse of H_bb,
         where rabbit's full mode uses the row sums of H_bb as a diagonal).
  external terms: sum_t g_t . x_sub + 1/2 x_sub^T H_t x_sub (on the internal x)

The gradient is analytic (beta profiled: envelope theorem, dNLL/dbeta = 0 at the profiled beta);
the Hessian is the central finite difference of the analytic gradient with one Richardson
extrapolation step (h = 1e-3 and 5e-4): truncation O(h^4) ~ 1e-12 relative, round-off
~ 1e-16 * (sum of |gradient terms|) / h ~ 1e-11 relative for these models, so errors and impacts
are good to better than 1e-8 relative.
"""

import argparse
import io
import json
import pickle
import sys

import h5py
import numpy as np
import scipy.linalg
import scipy.optimize


class _Opaque:
    """Any class of the pickle other than numpy's (hist and boost-histogram axes, ...): keeps
    its constructor arguments and state, executes nothing."""

    def __init__(self, *args, **kwargs):
        self.args, self.kwargs = args, kwargs

    def __setstate__(self, state):
        self.state = state


class _MetaUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module.split(".")[0] == "numpy":
            module = module.replace("numpy._core", "numpy.core")  # numpy 2 pickles, numpy 1
            return super().find_class(module, name)
        if (module, name) in (("builtins", "set"), ("builtins", "frozenset"),
                              ("builtins", "bytearray"), ("collections", "OrderedDict"),
                              ("_codecs", "encode")):
            return super().find_class(module, name)
        return type(name, (_Opaque,), {"__module__": module})

    def persistent_load(self, pid):
        return _Opaque(pid)


def read_rabbit_meta(f):
    """rabbit's pickled `meta` dict (wums.ioutils.pickle_load_h5py) or None without it."""
    if "meta" not in f or "pickle_data" not in f["meta"]:
        return None
    return _MetaUnpickler(io.BytesIO(f["meta"]["pickle_data"][...].tobytes())).load()


def _read(ds):
    a = ds[...]
    if "original_shape" in ds.attrs:
        a = a.reshape(tuple(ds.attrs["original_shape"]))
    return a


def _strs(ds):
    return [s.decode() if isinstance(s, bytes) else str(s) for s in ds[...]]


class Model:
    """The fit input as numpy arrays, read from the HDF5 file."""

    def __init__(self, path, systematic_type=None):
        """systematic_type None: from the pickled meta (rabbit's inputdata.py: log_normal when
        the file has no meta)."""
        with h5py.File(path, "r") as f:
            self.meta = read_rabbit_meta(f)
            if systematic_type is None:
                systematic_type = (self.meta or {}).get("systematic_type", "log_normal")
            if systematic_type not in ("log_normal", "normal"):
                raise RuntimeError(f"unknown systematic_type {systematic_type!r}")
            self.systematic_type = systematic_type
            opt = lambda name, default: _strs(f[name]) if name in f else default  # noqa: E731
            self.procs = _strs(f["hprocs"])
            self.signals = _strs(f["hsignals"])
            self.systs = _strs(f["hsysts"])
            self.systsnoconstraint = opt("hsystsnoconstraint", [])
            self.groups = opt("hsystgroups", [])
            self.groupidxs = ([np.asarray(v, dtype=int) for v in f["hsystgroupidxs"][...]]
                              if "hsystgroupidxs" in f else [])
            self.noiidxs = (np.asarray(_read(f["hnoiidxs"]), dtype=int).reshape(-1)
                            if "hnoiidxs" in f else np.zeros(0, dtype=int))
            self.pseudodatanames = opt("hpseudodatanames", [])
            if "hconstraintweights" in f:
                self.cw = _read(f["hconstraintweights"])
            else:
                self.cw = np.array([0.0 if s in self.systsnoconstraint else 1.0
                                    for s in self.systs])
            self.data_obs = _read(f["hdata_obs"])
            self.data_var = _read(f["hdata_var"]) if "hdata_var" in f else None
            self.pseudodata = (_read(f["hpseudodata"]).reshape(len(self.data_obs), -1)
                               if "hpseudodata" in f else np.zeros((len(self.data_obs), 0)))
            self.sumw2 = _read(f["hsumw2"])
            # rabbit always writes hsumw; without it the nominal yields stand in
            self.sumw = _read(f["hsumw"]) if "hsumw" in f else None
            self.cov_inv = _read(f["hdata_cov_inv"]) if "hdata_cov_inv" in f else None
            self.betavar = _read(f["hbetavariations"]) if "hbetavariations" in f else None
            nsyst = len(self.systs)
            if "hnorm" in f:
                self.norm = _read(f["hnorm"])
                logk = _read(f["hlogk"]) if nsyst else np.zeros(self.norm.shape + (0,))
                if logk.ndim == 4:
                    self.logkavg, self.logkhd = logk[:, :, 0, :], logk[:, :, 1, :]
                else:
                    self.logkavg, self.logkhd = logk, None
            else:
                g = f["hnorm_sparse"]
                shape = tuple(g.attrs["dense_shape"])
                idx = _read(g["indices"]).reshape(-1, 2)
                self.norm = np.zeros(shape)
                self.norm[idx[:, 0], idx[:, 1]] = _read(g["values"])
                self.logkavg = np.zeros(shape + (nsyst,))
                self.logkhd = None
                if nsyst:
                    gl = f["hlogk_sparse"]
                    lshape = tuple(gl.attrs["dense_shape"])
                    lidx = _read(gl["indices"]).reshape(-1, 2)
                    lval = _read(gl["values"])
                    if lshape[1] == 2 * nsyst:
                        self.logkhd = np.zeros(shape + (nsyst,))
                    for (e, c), v in zip(lidx, lval):
                        b, p = idx[e]
                        if c < nsyst:
                            self.logkavg[b, p, c] = v
                        else:
                            self.logkhd[b, p, c - nsyst] = v
            self.external = []
            if "external_terms" in f:
                names = self.procs[: len(self.signals)] + self.systs
                for tname, tg in f["external_terms"].items():
                    params = _strs(tg["params"])
                    n = len(params)
                    t = {"name": tname, "idx": np.array([names.index(p) for p in params]),
                         "g": _read(tg["grad_values"]) if "grad_values" in tg else None,
                         "H": None}
                    if "hess_dense" in tg:
                        t["H"] = _read(tg["hess_dense"]).reshape(n, n)
                    elif "hess_sparse" in tg:
                        hi = _read(tg["hess_sparse"]["indices"]).reshape(-1, 2)
                        hv = _read(tg["hess_sparse"]["values"])
                        H = np.zeros((n, n))
                        np.add.at(H, (hi[:, 0], hi[:, 1]), hv)
                        t["H"] = H
                    self.external.append(t)
        self.nbins = len(self.data_obs)
        self.nbinsfull, self.nproc = self.norm.shape
        if self.sumw is None:
            self.sumw = self.norm
        if self.meta is not None and "symmetric_tensor" in self.meta:
            if bool(self.meta["symmetric_tensor"]) != (self.logkhd is None):
                raise RuntimeError("meta symmetric_tensor disagrees with the logk tensor")
        self.npoi = len(self.signals)
        assert self.procs[: self.npoi] == self.signals
        self.names = self.signals + self.systs
        self.npar = self.npoi + len(self.systs)


def alpha_and_derivative(theta):
    u = 2.0 * theta
    a = u * (3 * u**4 - 10 * u**2 + 15) / 8.0
    da = np.where(np.abs(u) < 1.0, 2.0 * 15.0 / 8.0 * (u**2 - 1) ** 2, 0.0)
    return np.clip(a, -1.0, 1.0), da


class Likelihood:
    def __init__(self, model, data="observed", fit="poisson", bbstat="gamma", poi_positive=False,
                 bbstat_mode="lite"):
        """fit: poisson | chisq | covariance; bbstat: None | gamma | normal-multiplicative |
        normal-additive; bbstat_mode: lite (one beta per bin) | full (one per bin and process;
        Poisson and chisq only)."""
        m = self.m = model
        self.data = data
        if data == "observed":
            self.nobs = m.data_obs.copy()
        else:
            self.nobs = m.pseudodata[:, m.pseudodatanames.index(data)].copy()
        self.fit = fit
        self.bbstat = bbstat
        self.poi_positive = poi_positive
        nb = m.nbins
        if fit == "chisq":
            if np.any(self.nobs <= 0):
                raise RuntimeError("chisq fit with nobs <= 0")
            self.var = self.nobs.copy()
        if fit == "covariance":
            if m.cov_inv is None:
                raise RuntimeError("covariance fit needs hdata_cov_inv (rabbit's fallback "
                                   "`indata.getattr` does not exist)")
            self.cinv = m.cov_inv
        self.lognobs = np.log(np.where(self.nobs == 0, 1.0, self.nobs))
        if bbstat_mode not in ("lite", "full"):
            raise ValueError(f"unknown bbstat_mode {bbstat_mode!r}")
        self.bbstat_mode = bbstat_mode
        self.full = bool(bbstat) and bbstat_mode == "full"
        if self.full:
            if m.sumw2.ndim != 2:
                raise RuntimeError("BB full mode needs hsumw2 [nbinsfull, nproc]")
            sumw2, sumw = m.sumw2[:nb], m.sumw[:nb]
            if bbstat == "normal-additive":  # beta enters as sqrt(sumw2) beta: no mask needed
                self.active = sumw2 > 0.0
            else:  # rabbit's betamask: varbeta == 0 or sumw == 0
                self.active = (sumw2 > 0.0) & (sumw != 0.0)
            self.k = np.where(self.active, sumw**2 / np.where(self.active, sumw2, 1.0), 1.0)
            self.sbeta = np.sqrt(sumw2)
            self.varbeta = sumw2
            self.beta0 = 0.0 if bbstat == "normal-additive" else 1.0
        elif bbstat:
            self.active = m.sumw2[:nb] > 0.0
            self.varbeta = m.sumw2[:nb].sum(axis=1)
            S = np.where(self.active, m.sumw[:nb], 0.0).sum(axis=1)
            self.bmask = (self.varbeta == 0.0) | (S == 0.0)
            self.k = np.where(self.bmask, 1.0, S**2 / np.where(self.bmask, 1.0, self.varbeta))
            self.beta0 = 0.0 if bbstat == "normal-additive" else 1.0
        self.fixed_beta = None

    # --- yields ---------------------------------------------------------------------------
    def yields(self, x, full=False):
        """n [nb, nproc] before Barlow-Beeston and dn/dx [nb, nproc, npar]."""
        m = self.m
        nb = m.nbinsfull if full else m.nbins
        npoi = m.npoi
        theta = x[npoi:]
        xp = x[:npoi]
        mu = xp**2 if self.poi_positive else xp
        dmu = 2 * xp if self.poi_positive else np.ones_like(xp)
        r = np.ones(m.nproc)
        r[:npoi] = mu
        avg = m.logkavg[:nb]
        if m.logkhd is not None:
            a, da = alpha_and_derivative(theta)
            hd = m.logkhd[:nb]
            e = avg @ theta + hd @ (theta * a)
            de = avg + hd * (a + theta * da)
        else:
            e = avg @ theta
            de = avg
        norm = m.norm[:nb]
        J = np.zeros((nb, m.nproc, m.npar))
        if m.systematic_type == "log_normal":
            base = norm * np.exp(e)
            n = base * r
            J[:, :, npoi:] = n[:, :, None] * de
        else:
            base = norm
            n = norm * r + e
            J[:, :, npoi:] = de
        for p in range(npoi):
            J[:, p, p] = base[:, p] * dmu[p]
        return n, J

    def _dprime(self, L):
        """D'(L) = d(data term)/d nexp per bin and D''(L)."""
        if self.fit == "poisson":
            return 1.0 - self.nobs / L, self.nobs / L**2
        return (L - self.nobs) / self.var, 1.0 / self.var

    def _solve_gamma_full(self, n):
        """t_b of the gamma full-mode profile: the root of g(t) = t - D'(L(t)) with
        L(t) = Z + sum_active n_p k_p / (k_p + t n_p), for all bins at once. g is increasing;
        the bracket is (t_low, t_high) with t_low = max_active(-k_p / n_p) (where a beta would
        diverge: L -> inf, g < 0) and t_high = 1 (Poisson: g(1) = n / L > 0) or
        max(0, (L(0) - n) / v) + 1 (chisq: g >= t - (L(0) - n) / v for t >= 0). Newton steps,
        a bisection wherever Newton leaves the bracket, until the step is at the rounding level."""
        act, k = self.active, self.k
        if np.any(act & (n <= 0.0)):  # outside the model's domain (e.g. a line search at mu < 0)
            return np.full(n.shape[0], np.nan)
        ns = np.where(act, n, 1.0)
        Z = np.where(act, 0.0, n).sum(axis=1)
        anyact = act.any(axis=1)
        lo = np.where(act, -k / ns, -np.inf).max(axis=1)
        lo = np.where(anyact, lo, -1.0)
        if self.fit == "poisson":
            hi = np.ones_like(lo)
        else:
            hi = np.maximum(0.0, (n.sum(axis=1) - self.nobs) / self.var) + 1.0

        def g_and_dg(t):
            den = k + t[:, None] * ns
            L = Z + np.where(act, ns * k / den, 0.0).sum(axis=1)
            dL = -np.where(act, ns**2 * k / den**2, 0.0).sum(axis=1)
            d1, d2 = self._dprime(L)
            return t - d1, 1.0 - d2 * dL

        t = 0.5 * (lo + hi)
        for _ in range(200):
            g, dg = g_and_dg(t)
            lo = np.where(g < 0.0, t, lo)
            hi = np.where(g > 0.0, t, hi)
            tn = t - g / dg
            out = ~((tn > lo) & (tn < hi))
            tn = np.where(out, 0.5 * (lo + hi), tn)
            step = np.abs(tn - t)
            t = np.where(g == 0.0, t, tn)
            # |g| is known to ~1e-16 (g' >= 1): steps below 1e-15 are rounding noise
            if np.all((step <= 1e-15 * np.maximum(np.abs(t), 1.0)) | (g == 0.0)):
                break
        else:
            raise RuntimeError("gamma full-mode profile did not converge")
        # bins without an active entry: every beta is 1 (t is not used)
        return np.where(anyact, t, 0.0)

    def _profile_beta_full(self, n):
        """beta [nbins, nproc] of the full mode for the yields n [nbins, nproc] (docstring)."""
        t_type, nobs, k, act = self.bbstat, self.nobs, self.k, self.active
        if t_type == "gamma":
            t = self._solve_gamma_full(n)
            return np.where(act, k / (k + t[:, None] * np.where(act, n, 1.0)), 1.0)
        L0 = n.sum(axis=1)
        if t_type == "normal-multiplicative":
            S = np.where(act, n**2 / k, 0.0).sum(axis=1)
        else:
            S = self.varbeta.sum(axis=1)
        if self.fit == "covariance":
            # rabbit's coupled solution: (diag(S) W + 1) L = diag(S) W n + L0, t = W (L - n)
            W = self.cinv
            L = np.linalg.solve(S[:, None] * W + np.eye(len(S)), S * (W @ nobs) + L0)
            t = W @ (L - nobs)
        elif self.fit == "poisson":
            # L^2 + (S - L0) L - n S = 0, positive root (no cancellation in either branch)
            b = S - L0
            sq = np.sqrt(b * b + 4.0 * nobs * S)
            with np.errstate(divide="ignore", invalid="ignore"):
                L = np.where(b <= 0.0, 0.5 * (sq - b), 2.0 * nobs * S / (b + sq))
            t = 1.0 - nobs / L
        else:
            v = self.var
            L = (L0 + nobs * S / v) / (1.0 + S / v)
            t = (L - nobs) / v
        if t_type == "normal-multiplicative":
            return np.where(act, 1.0 - t[:, None] * n / k, 1.0)
        return -t[:, None] * self.sbeta

    def profile_beta(self, n):
        """rabbit's closed-form beta for the current yields n [nbins, nproc]: [nbins] in lite
        mode, [nbins, nproc] in full mode."""
        if self.full:
            return self._profile_beta_full(n)
        t, nobs, k = self.bbstat, self.nobs, self.k
        A = np.where(self.active, n, 0.0).sum(axis=1)
        Z = np.where(self.active, 0.0, n).sum(axis=1)
        As = np.where(A > 0, A, 1.0)
        b0 = self.beta0

        def root(a, b, c):
            return 0.5 * (-b + np.sqrt(b * b - 4 * a * c)) / a

        if self.fit == "poisson":
            if t == "gamma":
                beta = root(As * (As + k), As * (Z - nobs - b0 * k) + k * Z, -b0 * k * Z)
            elif t == "normal-multiplicative":
                beta = root(k * As, As**2 - k * b0 * As + k * Z, As * (Z - nobs) - k * b0 * Z)
            else:
                sb = np.sqrt(self.varbeta)
                ntot = A + Z
                beta = root(np.where(self.varbeta == 0, 1.0, sb), self.varbeta + ntot - sb * b0,
                            sb * (ntot - nobs) - ntot * b0)
                return np.where(self.varbeta == 0, b0, beta)
        elif self.fit == "chisq":
            v = self.var
            if t == "gamma":
                beta = root(As**2, k * v + (Z - nobs) * As, -k * v * b0)
            elif t == "normal-multiplicative":
                beta = ((nobs - Z) * As / v + k * b0) / (k + As * As / v)
            else:
                sb = np.sqrt(self.varbeta)
                return (sb * (nobs - A - Z) + v * b0) / (v + self.varbeta)
        else:
            C = self.cinv
            if t == "normal-multiplicative":
                M = As[:, None] * C * As[None, :] + np.diag(k)
                rhs = As * (C @ (nobs - Z)) + k * b0
                beta = np.linalg.solve(M, rhs)
            elif t == "normal-additive":
                sb = np.sqrt(self.varbeta)
                M = sb[:, None] * C * sb[None, :] + np.eye(len(sb))
                return np.linalg.solve(M, sb * (C @ (nobs - A - Z)) + b0)
            else:
                raise RuntimeError("covariance fit needs a normal bin-by-bin stat type")
        return np.where(self.bmask, b0, beta)

    def apply_beta(self, n, J, beta):
        """per-bin nexp and d nexp / dx at fixed beta."""
        if not self.bbstat:
            return n.sum(axis=1), J.sum(axis=1)
        if self.full:
            if self.bbstat == "normal-additive":
                return n.sum(axis=1) + (self.sbeta * beta).sum(axis=1), J.sum(axis=1)
            s = np.where(self.active, beta, 1.0)
            return (s * n).sum(axis=1), np.einsum("bp,bpi->bi", s, J)
        if self.bbstat == "normal-additive":
            return n.sum(axis=1) + np.sqrt(self.varbeta) * beta, J.sum(axis=1)
        s = np.where(self.active & ~self.bmask[:, None], beta[:, None], 1.0)
        return (s * n).sum(axis=1), np.einsum("bp,bpi->bi", s, J)

    def lbeta(self, beta):
        if not self.bbstat:
            return 0.0
        if self.full and self.bbstat != "normal-additive":
            b = np.where(self.active, beta, 1.0)  # inactive entries contribute 0
            if self.bbstat == "gamma":
                return float(np.sum(self.k * (b - 1.0) - self.k * np.log(b)))
            return float(np.sum(0.5 * self.k * (b - 1.0) ** 2))
        if self.bbstat == "gamma":
            return float(np.sum(self.k * (beta - 1.0) - self.k * np.log(beta)))
        if self.bbstat == "normal-multiplicative":
            return float(np.sum(np.where(self.bmask, 0.0, 0.5 * self.k * (beta - 1.0) ** 2)))
        return float(np.sum(0.5 * beta**2))

    def data_term(self, nexp):
        nobs = self.nobs
        if self.fit == "poisson":
            lognexp = np.log(np.where(nobs == 0, 1.0, nexp))
            val = np.sum(-nobs * (lognexp - self.lognobs) + nexp - nobs)
            return val, 1.0 - nobs / nexp
        if self.fit == "chisq":
            r = nexp - nobs
            return 0.5 * np.sum(r * r / self.var), r / self.var
        r = nexp - nobs
        cr = self.cinv @ r
        return 0.5 * r @ cr, cr

    # --- NLL and gradient -----------------------------------------------------------------
    def value_and_grad(self, x, beta=None):
        m = self.m
        n, J = self.yields(x)
        if self.bbstat:
            if beta is None:
                beta = self.fixed_beta if self.fixed_beta is not None else self.profile_beta(n)
        nexp, dnexp = self.apply_beta(n, J, beta)
        val, dl = self.data_term(nexp)
        grad = dl @ dnexp
        theta = x[m.npoi:]
        val += 0.5 * np.sum(m.cw * theta**2) + self.lbeta(beta)
        grad[m.npoi:] += m.cw * theta
        for t in m.external:
            xs = x[t["idx"]]
            if t["g"] is not None:
                val += t["g"] @ xs
                grad[t["idx"]] += t["g"]
            if t["H"] is not None:
                val += 0.5 * xs @ t["H"] @ xs
                grad[t["idx"]] += t["H"] @ xs
        return float(val), grad

    def nll(self, x):
        return self.value_and_grad(x)[0]

    def grad(self, x):
        return self.value_and_grad(x)[1]

    def hessian(self, x, h=1e-3):
        def d(step):
            H = np.zeros((len(x), len(x)))
            for i in range(len(x)):
                e = np.zeros(len(x))
                e[i] = step
                H[:, i] = (self.grad(x + e) - self.grad(x - e)) / (2 * step)
            return H

        H = (4 * d(h / 2) - d(h)) / 3
        return 0.5 * (H + H.T)

    # --- fit ------------------------------------------------------------------------------
    def x_default(self):
        return np.concatenate([np.ones(self.m.npoi), np.zeros(len(self.m.systs))])

    def minimize(self, x0=None):
        x = self.x_default() if x0 is None else np.array(x0, dtype=float)
        if x0 is None and self.full and self.bbstat == "gamma":
            # The gamma profile is undefined where an active yield is <= 0 (NaN), which BFGS's
            # first line search can probe: start from the normal-multiplicative minimum.
            nm = Likelihood(self.m, data=self.data, fit=self.fit, bbstat="normal-multiplicative",
                            poi_positive=self.poi_positive, bbstat_mode="full")
            x = scipy.optimize.minimize(nm.nll, x, jac=nm.grad, method="BFGS",
                                        options={"gtol": 1e-8, "maxiter": 10000}).x
        res = scipy.optimize.minimize(self.nll, x, jac=self.grad, method="BFGS",
                                      options={"gtol": 1e-8, "maxiter": 10000})
        x = res.x
        res = scipy.optimize.minimize(self.nll, x, jac=self.grad, hess=self.hessian,
                                      method="trust-exact", options={"gtol": 1e-11})
        x = res.x
        for _ in range(20):  # Newton polish
            g = self.grad(x)
            H = self.hessian(x)
            step = np.linalg.solve(H, g)
            x = x - step
            if np.max(np.abs(step)) < 1e-13:
                break
        g = self.grad(x)
        H = self.hessian(x)
        edm = 0.5 * g @ np.linalg.solve(H, g)
        if not edm < 1e-18:
            raise RuntimeError(f"reference fit not converged: edm {edm}")
        return x, H, edm

    # --- reported (post-fit) yields ---------------------------------------------------------
    def reported_yields(self, x, beta=None):
        """Yields per (bin, process) [nbinsfull, nproc] as rabbit reports them with masked
        channels (profile_and_apply(full=True)): beta profiled at x, the beta variations of
        hbetavariations applied in full mode (gamma / normal-multiplicative), see the module
        docstring. Without BB the yields before Barlow-Beeston; lite mode is not implemented."""
        m = self.m
        n = self.yields(x, full=True)[0]
        if not self.bbstat:
            return n
        if not self.full:
            raise NotImplementedError("reported yields of BB lite are not implemented here")
        nb = m.nbins
        if beta is None:
            beta = self.profile_beta(n[:nb])
        out = n.copy()
        if self.bbstat == "normal-additive":  # rabbit applies no beta variations here
            out[:nb] += self.sbeta * beta
            return out
        if m.betavar is not None:
            dbeta = np.where(self.active, np.sqrt(self.k) * (beta - 1.0), 0.0)  # [nbins, nproc]
            var = np.einsum("ijp,jp->ip", m.betavar, dbeta)  # [nbinsfull, nproc]
            n0 = m.norm
            pos = n0 > 0.0
            out = np.where(pos, out * (1.0 + var / np.where(pos, n0, 1.0)), out)
        out[:nb] = np.where(self.active, beta * out[:nb], out[:nb])
        return out

    def postfit_yields(self, x, C, h=1e-3):
        """reported_yields(x) with errors sqrt(diag(J C J^T)) per (bin, process) and per bin
        (sum over processes). J = d yields / dx by central differences with one Richardson step
        (h, h/2; beta re-profiled at every point): truncation O(h^4), independent of any
        analytic derivative."""
        y = self.reported_yields(x)

        def d(step):
            J = np.zeros(y.shape + (len(x),))
            for i in range(len(x)):
                e = np.zeros(len(x))
                e[i] = step
                J[..., i] = (self.reported_yields(x + e) - self.reported_yields(x - e)) / (2 * step)
            return J

        J = (4 * d(h / 2) - d(h)) / 3
        Jt = J.sum(axis=1)
        pvar, tvar = self.beta_spread(x)
        perr = np.sqrt(np.maximum(np.einsum("bpi,ij,bpj->bp", J, C, J) + pvar, 0.0))
        terr = np.sqrt(np.maximum(np.einsum("bi,ij,bj->b", Jt, C, Jt) + tvar, 0.0))
        return {"processes": list(self.m.procs), "total": y.sum(axis=1).tolist(),
                "total_error": terr.tolist(), "process": y.tolist(),
                "process_error": perr.tolist()}

    def beta_spread(self, x, h=1e-3):
        """g^T H_bb^-1 g per (bin, process) and per bin total at fixed x (full mode): H_bb the
        central second difference of the NLL in the active betas, g the central difference of
        reported_yields in them (exact for the linear yield formulas)."""
        m = self.m
        nb = m.nbins
        n = self.yields(x, full=True)[0]
        beta = self.profile_beta(n[:nb])
        act = self.active if self.bbstat != "normal-additive" else self.sbeta > 0
        idx = [tuple(i) for i in np.argwhere(act)]
        na = len(idx)
        y0 = self.reported_yields(x, beta)
        if na == 0:
            return np.zeros(y0.shape), np.zeros(y0.shape[0])

        def f(da, a, dc, c):
            b = beta.copy()
            b[idx[a]] += da
            b[idx[c]] += dc
            return self.value_and_grad(x, beta=b)[0]

        H = np.zeros((na, na))
        for a in range(na):
            for c in range(a + 1):
                H[a, c] = H[c, a] = (f(h, a, h, c) - f(h, a, -h, c) - f(-h, a, h, c)
                                     + f(-h, a, -h, c)) / (4 * h * h)
        G = np.zeros(y0.shape + (na,))
        for a in range(na):
            bp, bm = beta.copy(), beta.copy()
            bp[idx[a]] += 1e-6
            bm[idx[a]] -= 1e-6
            G[..., a] = (self.reported_yields(x, bp) - self.reported_yields(x, bm)) / 2e-6
        Hinv = np.linalg.inv(H)
        pvar = np.einsum("bpa,ac,bpc->bp", G, Hinv, G)
        Gt = G.sum(axis=1)
        tvar = np.einsum("ba,ac,bc->b", Gt, Hinv, Gt)
        return pvar, tvar

    def fit_result(self, impacts=False, postfit=False):
        """Fit and collect what expected.json records (values in reported units: mu for POIs
        with the lepus --poi-positive convention mu = x^2, errors via dmu/dx = 2x); postfit:
        also `yields` (postfit_yields)."""
        m = self.m
        x, H, edm = self.minimize()
        C = np.linalg.inv(H)
        values = x.copy()
        errors = np.sqrt(np.diag(C))
        if self.poi_positive:
            values[: m.npoi] = x[: m.npoi] ** 2
            errors[: m.npoi] = 2 * np.abs(x[: m.npoi]) * errors[: m.npoi]
        out = {"parameters": [{"name": nm, "value": float(v), "error": float(e)}
                              for nm, v, e in zip(m.names, values, errors)],
               "nll": self.nll(x), "edm": float(edm)}
        if self.bbstat:
            out["beta"] = self.profile_beta(self.yields(x)[0]).tolist()
        if impacts:
            if self.poi_positive:
                raise RuntimeError("impacts are checked with mu = x only")
            out["impacts"] = self.impacts(x, H, C)
        if postfit:
            out["yields"] = self.postfit_yields(x, C)
        return out

    def impacts(self, x, H, C):
        """rabbit's traditional impacts (impacts/traditional_impacts.py, Fitter.impacts_parms)."""
        m = self.m
        npoi = m.npoi
        nstat = npoi + len(m.systsnoconstraint)  # rabbit: unconstrained systematics come first
        # (files not written by rabbit may break that: then no stat / binByBinStat)
        with_stat = bool(np.all(m.cw[: len(m.systsnoconstraint)] == 0))
        targets = list(range(npoi)) + [npoi + i for i in m.noiidxs]
        cov_stat = np.linalg.inv(H[:nstat, :nstat])
        cov_stat_nobbb = None
        if self.bbstat:
            beta = self.profile_beta(self.yields(x)[0])
            self.fixed_beta = beta
            try:
                Hn = self.hessian(x)
            finally:
                self.fixed_beta = None
            cov_stat_nobbb = np.linalg.inv(Hn[:nstat, :nstat])
        sig = np.sqrt(np.diag(C))
        res = {"nominal": {}, "grouped": {}, "total": {}}
        for t in targets:
            name = m.names[t]
            res["total"][name] = float(sig[t])
            res["nominal"][name] = {m.names[j]: float(C[t, j] / sig[j])
                                    for j in range(m.npar) if j != t}
            grp = {}
            v = C[t]
            for g, idx in zip(m.groups, m.groupidxs):
                gi = npoi + idx
                grp[g] = float(np.sqrt(v[gi] @ np.linalg.solve(C[np.ix_(gi, gi)], v[gi])))
            in_stat = t < nstat  # rabbit: a constrained NOI gets 0 for stat and binByBinStat
            if not with_stat:
                pass
            elif cov_stat_nobbb is not None:
                grp["stat"] = float(np.sqrt(cov_stat_nobbb[t, t])) if in_stat else 0.0
                d = cov_stat[t, t] - cov_stat_nobbb[t, t] if in_stat else 0.0
                grp["binByBinStat"] = float(np.sqrt(max(d, 0.0)))
            else:
                grp["stat"] = float(np.sqrt(cov_stat[t, t])) if in_stat else 0.0
            res["grouped"][name] = grp
        return res


def automatic_bbstat(fit, mode="lite"):
    """rabbit's --binByBinStatType automatic."""
    if fit == "covariance":
        return "normal-additive"
    return "normal-multiplicative" if mode == "full" else "gamma"


def main(argv=None):
    ap = argparse.ArgumentParser(description="rabbit's likelihood fit of a rabbit-layout file "
                                 "(independent of lepus)")
    ap.add_argument("file")
    ap.add_argument("--fit", choices=["poisson", "chisq", "covariance"], default="poisson")
    ap.add_argument("--bbstat", choices=["gamma", "normal-multiplicative", "normal-additive",
                                         "none"], default=None)
    ap.add_argument("--bbstat-mode", choices=["lite", "full"], default="lite")
    ap.add_argument("--poi-positive", action="store_true")
    ap.add_argument("--data", default="observed")
    ap.add_argument("--impacts", action="store_true")
    ap.add_argument("--postfit", action="store_true",
                    help="also the post-fit yields per bin and process with their errors")
    ap.add_argument("--json", default="-")
    a = ap.parse_args(argv)
    bbstat = a.bbstat or automatic_bbstat(a.fit, a.bbstat_mode)
    model = Model(a.file)
    lik = Likelihood(model, data=a.data, fit=a.fit, bbstat=None if bbstat == "none" else bbstat,
                     poi_positive=a.poi_positive, bbstat_mode=a.bbstat_mode)
    res = lik.fit_result(impacts=a.impacts, postfit=a.postfit)
    res.pop("beta", None)
    out = {"file": a.file, "systematic_type": model.systematic_type,
           "reference": {"fit": a.fit, "bbstat": None if bbstat == "none" else bbstat,
                         "bbstat_mode": a.bbstat_mode, "poi_positive": a.poi_positive,
                         "data": a.data, "impacts": a.impacts, "postfit": a.postfit}, **res}
    text = json.dumps(out, indent=1)
    if a.json == "-":
        print(text)
    else:
        with open(a.json, "w") as fo:
            fo.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
