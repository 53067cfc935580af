"""Model.gradient and Model.hessian agree with finite differences of Model.nll (and of the
gradient), on file and array models and for the likelihood variants."""
import numpy as np
import pytest

from conftest import conformance, read_quiet


def central_gradient(f, x, h=1e-5):
    g = np.empty_like(x)
    for i in range(len(x)):
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (f(x + e) - f(x - e)) / (2 * h)
    return g


def check(lik_or_model, x):
    g = lik_or_model.gradient(x)
    fd = central_gradient(lik_or_model.nll, x)
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-6)
    h = lik_or_model.hessian(x)
    np.testing.assert_allclose(h, h.T, rtol=1e-12, atol=1e-12)
    fdh = np.column_stack([central_gradient(lambda y: lik_or_model.gradient(y)[j], x) for j in range(len(x))])
    np.testing.assert_allclose(h, fdh, rtol=1e-5, atol=1e-5)
    value, grad = lik_or_model.value_and_gradient(x)
    assert value == lik_or_model.nll(x)
    np.testing.assert_array_equal(grad, g)


def point(n, seed=3):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.3, n)
    x[0] = 1.0 + 0.1 * x[0]
    return x


@pytest.mark.parametrize("name", ["asym_noi_dense.hdf5", "bblite_mixed_masked.hdf5"])
def test_file_model(name):
    m = read_quiet(conformance(name))
    check(m, point(len(m.parameter_names)))


def test_array_model(synthetic):
    check(synthetic, point(5))


@pytest.mark.parametrize("kw", [dict(data_term="chisq"), dict(bin_by_bin_stat_type="normal-additive"),
                                dict(bin_by_bin_stat_mode="full"), dict(bbstat=False),
                                dict(poi_positive=True)], ids=str)
def test_variants(synthetic, kw):
    lik = synthetic.likelihood(**kw)
    check(lik, point(5))


def test_accepts_lists_and_ints(synthetic):
    x = [1, 0, 0, 0, 0]
    assert synthetic.nll(x) == synthetic.nll(np.asarray(x, dtype=float))
    # Non-contiguous input is converted.
    wide = np.zeros(10)
    wide[::2] = x
    assert synthetic.nll(wide[::2]) == synthetic.nll(x)
