"""An independent implementation of pyhf's model semantics (numpy + iminuit, written from the
HistFactory definitions: normsys code 4, histosys code 4p, lumi, staterror with combined sample
uncertainties and zero-uncertainty bins fixed, shapesys with Poisson constraints, shapefactor)
for tests/data/histfactory/two_channel.json (measurement "main"), against `lepus hypotest` and
`lepus fit`: the observed q~_mu at mu = 1, the Asimov statistic built at lepus's background-only
fit, the CLs formulas, and lepus's minimum being at least as low as iminuit's."""
import json
import os
import subprocess

import numpy as np
import pytest

iminuit = pytest.importorskip("iminuit")
from iminuit import Minuit  # noqa: E402
import math  # noqa: E402


class norm:  # the standard normal CDF without scipy
    @staticmethod
    def cdf(x):
        return 0.5 * math.erfc(-x / math.sqrt(2.0))

WS = os.path.join(os.path.dirname(__file__), "..", "data", "histfactory", "two_channel.json")
w = json.load(open(WS))
obs = {o["name"]: np.array(o["data"]) for o in w["observations"]}


def code4_coef(hi,lo):
    A=np.zeros((6,6))
    for i in range(1,7):
        A[0,i-1]=1; A[1,i-1]=(-1)**i; A[2,i-1]=i; A[3,i-1]=i*(-1)**(i-1); A[4,i-1]=i*(i-1); A[5,i-1]=i*(i-1)*(-1)**(i-2)
    b=np.array([hi-1,lo-1,hi*np.log(hi),-lo*np.log(lo),hi*np.log(hi)**2,lo*np.log(lo)**2])
    return np.linalg.solve(A,b)
def normsys4(a,hi,lo):
    if a>=1: return hi**a
    if a<=-1: return lo**(-a)
    c=code4_coef(hi,lo); return 1+sum(c[i-1]*a**i for i in range(1,7))
def histo4p(a,nom,hi,lo):
    dup=hi-nom; ddn=nom-lo
    if a>1: return dup*a
    if a<-1: return ddn*a
    S=0.5*(dup+ddn); A=0.0625*(dup-ddn)
    return a*(S+a*A*(15+a*a*(-10+a*a*3)))
names=['mu','lumi','sig_theory','jes']+[f'stSR{i}' for i in range(3)]+[f'bs{i}' for i in range(3)]+[f'cr{i}' for i in range(2)]+[f'stCR{i}' for i in range(2)]
ix={n:i for i,n in enumerate(names)}
# staterror sigmas
stSR=np.sqrt(np.array([0.5,1,0])**2+np.array([2,2,0])**2)/(np.array([5,10,3])+np.array([50,40,0]))
stCR=np.array([3,2.5])/np.array([100,80])
tau=(np.array([50,40,0.])/np.array([5,8,1.]))**2  # bin 3 fixed
def expected(p):
    SR=np.zeros(3); CR=np.zeros(2)
    for b in range(3):
        sig=5*[1,2,0.6][b]*p[ix['mu']]*p[ix['lumi']]*normsys4(p[ix['sig_theory']],1.1,0.85)*(p[ix[f'stSR{b}']])
        nomb=[50,40,0][b]; hib=[52,41,0.5][b]; lob=[49,38.5,0][b]
        bkg=(nomb+histo4p(p[ix['jes']],nomb,hib,lob))*p[ix['lumi']]*normsys4(p[ix['jes']],1.05,0.97)*p[ix[f'stSR{b}']]*p[ix[f'bs{b}']]
        SR[b]=sig+bkg
    for b in range(2):
        bkg=[100,80][b]*p[ix['lumi']]*normsys4(p[ix['jes']],1.04,0.96)*p[ix[f'cr{b}']]*p[ix[f'stCR{b}']]
        CR[b]=bkg+[10,12][b]
    return SR,CR
def nll(p,data,aux):
    SR,CR=expected(p)
    lam=np.concatenate([SR,CR]); n=np.concatenate([data['SR'],data['CR']])
    if np.any(lam<=0): return 1e30
    v=np.sum(lam-n*np.log(lam))
    v+=0.5*((p[ix['lumi']]-aux['lumi'])/0.02)**2
    v+=0.5*(p[ix['sig_theory']]-aux['sig_theory'])**2+0.5*(p[ix['jes']]-aux['jes'])**2
    for b in range(2): v+=0.5*((p[ix[f'stSR{b}']]-aux[f'stSR{b}'])/stSR[b])**2
    for b in range(2): v+=0.5*((p[ix[f'stCR{b}']]-aux[f'stCR{b}'])/stCR[b])**2
    for b in range(2):
        g=p[ix[f'bs{b}']]; 
        if g<=0: return 1e30
        v+=g*tau[b]-aux[f'bs{b}']*tau[b]*np.log(g)
    return v
init=dict(mu=1,lumi=1,sig_theory=0,jes=0,stSR0=1,stSR1=1,stSR2=1,bs0=1,bs1=1,bs2=1,cr0=1,cr1=1,stCR0=1,stCR1=1)
bounds=dict(mu=(0,5),lumi=(0.5,1.5),sig_theory=(-5,5),jes=(-5,5),stSR0=(1e-10,10),stSR1=(1e-10,10),stSR2=(1e-10,10),bs0=(1e-10,10),bs1=(1e-10,10),bs2=(1e-10,10),cr0=(0,10),cr1=(0,10),stCR0=(1e-10,10),stCR1=(1e-10,10))
fixed={'stSR2','bs2'}
aux0=dict(lumi=1,sig_theory=0,jes=0,stSR0=1,stSR1=1,stCR0=1,stCR1=1,bs0=1,bs1=1)
def fit(data,aux,mu=None,start=None):
    p0=[(start or init)[n] for n in names]
    m=Minuit(lambda *p: nll(np.array(p),data,aux),*p0,name=names)
    m.errordef=0.5; m.strategy=2; m.tol=1e-8
    for n in names: m.limits[n]=bounds[n]
    for n in fixed: m.fixed[n]=True
    if mu is not None: m.values['mu']=mu; m.fixed['mu']=True
    m.migrad(ncall=100000)
    m.migrad(ncall=100000)
    return m.fval, dict(zip(names,m.values))
def qtilde(data,aux,mu):
    f0,x0=fit(data,aux)
    f1,_=fit(data,aux,mu,x0)
    return (0 if x0['mu']>mu else 2*(f1-f0)), x0['mu']


MAPN = {"mu": "mu", "lumi": "lumi", "sig_theory": "sig_theory", "jes": "jes", "stSR0": "staterror_SR[0]",
        "stSR1": "staterror_SR[1]", "stSR2": "staterror_SR[2]", "bs0": "bkg_shape[0]", "bs1": "bkg_shape[1]",
        "bs2": "bkg_shape[2]", "cr0": "cr_shape[0]", "cr1": "cr_shape[1]", "stCR0": "staterror_CR[0]",
        "stCR1": "staterror_CR[1]"}


def run(cli, *args):
    out = subprocess.run([cli, *args], check=False, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out


def test_hypotest_matches_independent_model(cli, tmp_path):
    res = tmp_path / "h.json"
    run(cli, "hypotest", WS, "--poi-value", "1", "--json", str(res))
    h = json.load(open(res))
    q, muhat = qtilde(obs, aux0, 1.0)
    assert h["q_obs"] == pytest.approx(q, rel=1e-7)
    assert h["mu_hat"] == pytest.approx(muhat, abs=1e-4)  # iminuit's numerical-gradient precision
    # lepus's background-only fit (the Asimov generating point) is at least as good as iminuit's.
    fit0 = tmp_path / "f0.json"
    run(cli, "fit", WS, "--freeze", "mu", "--set", "mu=0", "--set", "jes=0.5", "--json", str(fit0))
    lv = {p["name"]: p["value"] for p in json.load(open(fit0))["parameters"]}
    pl = np.array([lv[MAPN[n]] for n in names])
    _, xa = fit(obs, aux0, 0.0)
    pm = np.array([xa[n] for n in names])
    assert nll(pl, obs, aux0) <= nll(pm, obs, aux0) + 1e-10
    # The Asimov statistic at that point, with iminuit's fits of the independent model.
    sr, cr = expected(pl)
    qa, _ = qtilde({"SR": sr, "CR": cr}, {k: lv[MAPN[k]] for k in aux0}, 1.0)
    assert h["q_asimov"] == pytest.approx(qa, rel=1e-7)
    # pyhf's asymptotic formulas (qtilde) from the two statistics.
    sq, sqa = np.sqrt(h["q_obs"]), np.sqrt(h["q_asimov"])
    ts = sq - sqa if sq <= sqa else (h["q_obs"] - h["q_asimov"]) / (2 * sqa)
    assert h["cls_obs"] == pytest.approx(norm.cdf(-(ts + sqa)) / norm.cdf(-ts), rel=1e-9)
    band = [norm.cdf(-(n + sqa)) / norm.cdf(-n) for n in [2, 1, 0, -1, -2]]
    assert h["cls_exp"] == pytest.approx(band, rel=1e-9)
