"""iminuit (MIGRAD with lepus's exact gradient) minimising Model.nll finds Model.fit's minimum."""
import numpy as np
import pytest

from conftest import conformance, read_quiet

iminuit = pytest.importorskip("iminuit")


def minimise(model_or_lik):
    names = model_or_lik.names if hasattr(model_or_lik, "names") else model_or_lik.parameter_names
    m = iminuit.Minuit(model_or_lik.nll, model_or_lik.initial_values(), grad=model_or_lik.gradient, name=names)
    m.errordef = iminuit.Minuit.LIKELIHOOD
    m.strategy = 2
    m.tol = 1e-6
    m.migrad()
    assert m.valid
    m.hesse()
    return m


@pytest.mark.parametrize("name", ["asym_noi_dense.hdf5", "bblite_mixed_masked.hdf5"])
def test_iminuit_agrees_with_fit(name):
    model = read_quiet(conformance(name))
    fit = model.fit(threads=1)
    m = minimise(model)
    np.testing.assert_allclose(np.array(m.values), fit.values, rtol=0, atol=2e-3 * fit.errors.max())
    np.testing.assert_allclose(np.array(m.errors), fit.errors, rtol=2e-2)
    assert m.fval == pytest.approx(fit.nll, abs=1e-6)


def test_iminuit_on_a_likelihood(synthetic):
    lik = synthetic.likelihood(data_term="chisq")
    fit = synthetic.fit(threads=1, data_term="chisq")
    m = minimise(lik)
    np.testing.assert_allclose(np.array(m.values), fit.values, rtol=0, atol=2e-3 * fit.errors.max())
