"""Every error path raises a Python exception carrying the C++ message."""
import re

import numpy as np
import pytest

import lepus
from conftest import conformance, read_quiet, synthetic_arrays


def build(**changes):
    arrays = synthetic_arrays(nbins=4, nproc=2, nsyst=2)
    arrays.update(changes)
    return lepus.Model.from_arrays(**arrays)


def raises(exc, message, fn, *args, **kwargs):
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    assert str(info.value) == message
    return info.value


def test_exception_types():
    assert issubclass(lepus.InputError, OSError) and issubclass(lepus.InputError, ValueError)
    assert issubclass(lepus.NumericalError, RuntimeError)


def test_read_errors(tmp_path):
    raises(lepus.InputError, "/nonexistent/x.h5: no such file", lepus.read, "/nonexistent/x.h5")
    raises(OSError, f"{tmp_path}: is a directory, not a fit input file", lepus.read, tmp_path)
    bad = tmp_path / "bad.h5"
    bad.write_text("not hdf5")
    with pytest.raises(lepus.InputError, match=re.escape(str(bad))):
        lepus.read(bad)


def test_read_invalid_content(tmp_path):
    # A valid file with a NaN in hnorm: the reader names the dataset and the index.
    import h5py
    import shutil
    path = tmp_path / "nan.hdf5"
    shutil.copy(conformance("sym_poi_dense.hdf5"), path)
    with h5py.File(path, "r+") as f:
        v = f["hnorm"][...]
        v[7] = np.nan
        f["hnorm"][...] = v
    raises(ValueError, f"{path}: hnorm[7]: is nan, but must be finite", lepus.read, path)


ARRAY_ERRORS = [
    (dict(processes=[]), "processes: is empty, but must list at least one process"),
    (dict(processes=["sig", "sig"]), 'processes[1]: is "sig", but names must be unique (also at index 0)'),
    (dict(systematics=["shift", "shift"]), 'systematics[1]: is "shift", but names must be unique (also at index 0)'),
    (dict(signals=["bkg1"]), 'signals[0]: is "bkg1", but must be "sig" (processes[0]): the signal processes must be '
                            'the first entries of processes, in the same order'),
    (dict(signals=["sig", "bkg1", "x"]), "signals: has 3 entries, but processes has only 2"),
    (dict(systematic_type="gaussian"), 'systematic_type: is "gaussian", but must be "log_normal" or "normal"'),
    (dict(constraint_weights=[1.0]), "constraint_weights: has shape [1], but must be [nsyst] = [2]"),
    (dict(constraint_weights=[1.0, -1.0]), "constraint_weights[1]: is -1, but must be >= 0"),
    (dict(constraint_weights=[np.inf, 1.0]), "constraint_weights[0]: is inf, but must be finite"),
    (dict(noi=["nope"]), 'noi[0]: is "nope", but must be one of systematics'),
    (dict(noi=["shift", "shift"]), 'noi[1]: is "shift", but names must be unique'),
    (dict(groups={"g": ["syst1", "zzz"]}), 'groups["g"][1]: is "zzz", but must be one of systematics'),
    (dict(data=np.zeros((2, 2))), "data: has shape [2, 2], but must be 1-D [nbins]"),
    (dict(data=np.zeros(0)), "data: is empty, but must have at least one bin"),
    (dict(data=[1.0, -2.0, 3.0, 4.0]), "data[1]: is -2, but must be >= 0"),
    (dict(data=[1.0, 2.0, np.nan, 4.0]), "data[2]: is nan, but must be finite"),
    (dict(data=np.ones(5)), "norm: has 4 rows, but must have at least nbins = 5 (len(data))"),
    (dict(norm=np.ones((4, 3))), "norm: has shape [4, 3], but must be [nbinsfull, nproc] with nproc = 2 (len(processes))"),
    (dict(logk=np.zeros((4, 2, 3))), "logk: has shape [4, 2, 3], but must be [nbinsfull, nproc, nsyst] = [4, 2, 2]"),
    (dict(logk_halfdiff=np.zeros((4, 2))), "logk_halfdiff: has shape [4, 2], but must be [nbinsfull, nproc, nsyst] = [4, 2, 2]"),
    (dict(sumw2=np.ones((4, 3))), "sumw2: has shape [4, 3], but must be [nbinsfull, nproc] = [4, 2]"),
    (dict(sumw=np.ones((3, 2))), "sumw: has shape [3, 2], but must be [nbinsfull, nproc] = [4, 2]"),
    (dict(norm="abc"), "norm is not an array of numbers"),
    (dict(processes="sig"), "processes must be a sequence of names, not a string"),
]


@pytest.mark.parametrize("changes,message", ARRAY_ERRORS, ids=[m[:40] for _, m in ARRAY_ERRORS])
def test_from_arrays_errors(changes, message):
    raises(ValueError, message, build, **changes)


def test_from_arrays_value_errors_with_index():
    a = synthetic_arrays(nbins=4, nproc=2, nsyst=2)
    norm = a["norm"].copy()
    norm[3, 1] = np.nan
    raises(ValueError, "norm[3, 1]: is nan, but must be finite", build, norm=norm)
    logk = a["logk"].copy()
    logk[2, 0, 1] = -np.inf
    raises(ValueError, "logk[2, 0, 1]: is -inf, but must be finite", build, logk=logk)
    sumw2 = a["sumw2"].copy()
    sumw2[0, 1] = -1
    raises(ValueError, "sumw2[0, 1]: is -1, but must be >= 0", build, sumw2=sumw2)
    # Log-normal logk where the nominal is not > 0 (the reader's rule and message).
    norm = a["norm"].copy()
    norm[1, 1] = 0.0
    raises(ValueError, 'logk[1, 1, 0]: is 0.025 at (bin 1, process "bkg1", systematic "shift") where the nominal '
                       "yield is 0, but log-normal logk must be 0 where the nominal is not > 0 (only rabbit's "
                       "placeholder ln(1e-3) is accepted, and ignored, at zero nominal)",
           build, norm=norm, logk=np.full((4, 2, 2), 0.025))
    # rabbit's placeholder at zero nominal is accepted and ignored, as by the reader.
    logk = np.zeros((4, 2, 2))
    logk[1, 1, :] = np.log(1e-3)
    build(norm=norm, logk=logk)


KEYWORD_ERRORS = [
    (dict(freeze=["nomatch.*"]), "freeze: pattern 'nomatch.*' matches no parameter name (it must match a whole "
                                 "name; parameters: sig, shift, syst1)"),
    (dict(freeze=["("]), None),
    (dict(set={"nope": 1.0}), "set: no parameter named 'nope' (parameters: sig, shift, syst1)"),
    (dict(set={"sig": -1.0}, poi_positive=True), "set sig is -1, but must be >= 0 with poi_positive"),
    (dict(method="newton"), None),
    (dict(threads=-1), "threads is -1, but must be >= 0"),
    (dict(chisq_data_var=True), 'chisq_data_var needs data_term "chisq" or "covariance"'),
    (dict(pseudodata="x"), "pseudodata: the model has no pseudo-data set named 'x' (the file has no pseudo-data)"),
    (dict(asimov=True, pseudodata="x"), "asimov, pseudodata and data are mutually exclusive"),
    (dict(data=np.ones(3)), "data has shape [3], but must be [nbins] = [4]"),
    (dict(edm_tolerance=-1.0), None),
]


@pytest.mark.parametrize("kw,message", KEYWORD_ERRORS, ids=[str(k) for k, _ in KEYWORD_ERRORS])
def test_fit_keyword_errors(kw, message):
    m = build()
    with pytest.raises(ValueError) as info:
        m.fit(**kw)
    if message is not None:
        assert str(info.value) == message
    else:
        assert str(info.value)  # the C++ message, not empty


def test_engine_messages_pass_through():
    m = build()
    for kw, engine_fn in [(dict(data_term="x"), "DataTermFromString"),
                          (dict(bin_by_bin_stat_type="x"), "BinByBinStatTypeFromString"),
                          (dict(bin_by_bin_stat_mode="x"), "BinByBinStatModeFromString")]:
        with pytest.raises(ValueError, match='"x"'):
            m.fit(**kw)
    with pytest.raises(ValueError, match=r"^method: "):
        m.fit(method="newton")
    with pytest.raises(ValueError, match=r"^fit options: "):
        m.fit(edm_tolerance=-1.0)


def test_evaluation_errors(synthetic):
    raises(ValueError, "x has shape [3], but must be [nparams] = [5]", synthetic.nll, np.zeros(3))
    raises(ValueError, "x has shape [5, 1], but must be [nparams] = [5]", synthetic.gradient, np.zeros((5, 1)))
    raises(ValueError, "x is not an array of numbers", synthetic.hessian, "abc")


def test_toolkit_errors(synthetic):
    r = synthetic.fit(threads=1)
    raises(ValueError, "scan: no parameter named 'nope'", synthetic.scan, "nope", [0.0, 1.0], r)
    with pytest.raises(ValueError, match=r"^toys: .*ntoys"):
        synthetic.toys(0, result=r)
    raises(ValueError, 'mode is "x", but must be "expected" or "observed"', synthetic.toys, 2, mode="x")
    raises(ValueError, "groups: group stat: the name is reserved (rows stat, binByBinStat, Total)",
           synthetic.impacts, r, groups={"stat": "syst.*"})
    raises(ValueError, "groups: group g: pattern 'zzz' matches no systematic (it must match a whole name)",
           synthetic.impacts, r, groups={"g": "zzz"})
    raises(ValueError, 'storage is "x", but must be "dense" or "sparse"', synthetic.write, "/tmp/x.h5", storage="x")
    with pytest.raises(lepus.InputError):
        synthetic.write("/nonexistent/dir/x.h5")


def test_numerical_error(synthetic):
    failed = synthetic.fit(threads=1, max_iterations=1, set={"sig": 3.0})
    assert failed.status == "not_converged"
    with pytest.raises(lepus.NumericalError, match=r"^impacts: the fit did not converge \(not_converged: iteration limit"):
        synthetic.impacts(failed)
    with pytest.raises(lepus.NumericalError, match=r"^postfit_yields: the fit did not converge"):
        synthetic.postfit_yields(failed)


def test_result_of_another_model(synthetic):
    other = build()
    r = other.fit(threads=1)
    message = "result: the FitResult is a fit of another Model"
    raises(ValueError, message, synthetic.impacts, r)
    raises(ValueError, message, synthetic.postfit_yields, r)
    raises(ValueError, message, synthetic.scan, "sig", [1.0], r)
    raises(ValueError, message, synthetic.toys, 2, result=r)


def test_keyword_types(synthetic):
    raises(ValueError, "set: the value of 'sig' is not a number", synthetic.fit, set={"sig": "abc"})
    raises(ValueError, "groups must be True, False or a dict {name: regex}", synthetic.impacts,
           synthetic.fit(threads=1), groups=["exp"])
    raises(ValueError, "groups must be a dict {group: [systematic names]}", build, groups=["syst1"])
