"""Models from files and from numpy arrays agree; write/read round trip; model properties."""
import numpy as np
import pytest

import lepus
from conftest import arrays_of_file, conformance, read_quiet, synthetic_arrays

FILES = ["sym_poi_dense.hdf5", "asym_noi_dense.hdf5", "bblite_mixed_masked.hdf5"]


@pytest.mark.parametrize("name", FILES)
def test_file_and_arrays_agree(name):
    path = conformance(name)
    from_file = read_quiet(path)
    from_arrays = lepus.Model.from_arrays(**arrays_of_file(path))
    assert from_arrays.parameter_names == from_file.parameter_names
    assert from_arrays.nbins == from_file.nbins and from_arrays.nbins_full == from_file.nbins_full
    x = from_file.initial_values() + 0.1
    assert from_arrays.nll(x) == from_file.nll(x)
    np.testing.assert_array_equal(from_arrays.gradient(x), from_file.gradient(x))
    a, b = from_file.fit(threads=1), from_arrays.fit(threads=1)
    assert a.ok and b.ok
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.errors, b.errors)
    assert a.nll == b.nll


def test_sparse_file_equals_dense():
    dense = read_quiet(conformance("sym_poi_dense.hdf5")).fit(threads=1)
    sparse = read_quiet(conformance("sym_poi_sparse.hdf5")).fit(threads=1)
    np.testing.assert_allclose(sparse.values, dense.values, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("storage", ["dense", "sparse"])
def test_write_read_round_trip(tmp_path, synthetic, storage):
    path = tmp_path / f"model_{storage}.hdf5"
    synthetic.write(path, storage=storage)
    back = lepus.read(path)  # lepus writes its metadata: no warning
    assert back.warnings == []
    assert back.parameter_names == synthetic.parameter_names
    assert back.noi == ["shift"] and back.groups == {"exp": ["syst1", "syst2", "syst3"]}
    a, b = synthetic.fit(threads=1), back.fit(threads=1)
    np.testing.assert_allclose(b.values, a.values, rtol=1e-12, atol=1e-12)
    assert b.nll == pytest.approx(a.nll, rel=1e-13)


def test_properties(synthetic):
    arrays = synthetic_arrays()
    assert synthetic.processes == arrays["processes"]
    assert synthetic.signals == ["sig"]
    assert synthetic.systematics == arrays["systematics"]
    assert synthetic.parameter_names == ["sig"] + arrays["systematics"]
    np.testing.assert_array_equal(synthetic.data, arrays["data"])
    np.testing.assert_array_equal(synthetic.norm, arrays["norm"])
    np.testing.assert_array_equal(synthetic.sumw2, arrays["sumw2"])
    np.testing.assert_array_equal(synthetic.constraint_weights, arrays["constraint_weights"])
    assert synthetic.systematic_type == "log_normal"
    assert synthetic.channels[0]["name"] == "ch0" and synthetic.channels[0]["nbins"] == 20
    assert not synthetic.data.flags.writeable
    np.testing.assert_array_equal(synthetic.initial_values(), [1, 0, 0, 0, 0])


def test_masked_bins_from_arrays():
    arrays = synthetic_arrays()
    arrays["data"] = arrays["data"][:15]
    m = lepus.Model.from_arrays(**arrays)
    assert (m.nbins, m.nbins_full) == (15, 20)
    assert [c["name"] for c in m.channels] == ["ch0", "masked"]
    y = m.postfit_yields(m.fit(threads=1))
    assert y["postfit"]["total"].shape == (20,)
    assert y["postfit"]["process"].shape == (20, 3)


def test_result_arrays_are_views_owned_by_the_result(synthetic):
    r = synthetic.fit(threads=1)
    values, cov = r.values, r.covariance
    assert isinstance(values.base, lepus.FitResult) and isinstance(cov.base, lepus.FitResult)
    assert not values.flags.writeable and not values.flags.owndata
    # The same storage on every access (no copies).
    assert r.values.__array_interface__["data"][0] == values.__array_interface__["data"][0]
    expected = values.copy()
    del r
    import gc
    gc.collect()
    # The views keep the result alive.
    np.testing.assert_array_equal(values, expected)
    assert cov.shape == (5, 5)


def test_fit_result_fields(synthetic):
    r = synthetic.fit(threads=1)
    assert r.status == "converged" and r.ok
    assert r.names == synthetic.parameter_names
    assert r.covariance.shape == (5, 5)
    np.testing.assert_allclose(np.diag(r.correlation), 1.0)
    np.testing.assert_allclose(np.sqrt(np.diag(r.covariance)), r.errors)
    assert r.edm < 1e-8 and r.iterations > 0
    assert set(r.timings) == {"total", "evaluation", "linear_algebra", "covariance"}
    assert r.gof["ndf"] == 20 - 2
    assert r.likelihood.nll(r.x) == pytest.approx(r.nll, abs=1e-12)


def test_likelihood_variants(synthetic):
    base = synthetic.fit(threads=1)
    for kw in [dict(data_term="chisq"), dict(bin_by_bin_stat_type="normal-multiplicative"),
               dict(bin_by_bin_stat_mode="full"), dict(bbstat=False), dict(poi_positive=True)]:
        r = synthetic.fit(threads=1, **kw)
        assert r.ok, kw
        assert abs(r.values[0] - base.values[0]) < 0.5 * base.errors[0], kw
    lik = synthetic.likelihood(data_term="chisq", bin_by_bin_stat_mode="full")
    assert lik.description.startswith("chi-square") or "chi" in lik.description
    assert lik.data_label == "observed"


def test_data_choices(synthetic):
    asimov = synthetic.fit(threads=1, asimov=True)
    np.testing.assert_allclose(asimov.values, [1, 0, 0, 0, 0], atol=1e-6)
    moved = synthetic.fit(threads=1, asimov=True, set={"sig": 1.5})
    assert moved.values[0] == pytest.approx(1.5, abs=1e-6)
    data = np.asarray(synthetic.data) * 1.1
    r = synthetic.fit(threads=1, data=data)
    assert r.likelihood.data_label == "data"
    np.testing.assert_array_equal(r.likelihood.data, data)
