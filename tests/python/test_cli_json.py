"""Python results are the CLI's: FitResult.to_dict(), Model.impacts() and Model.toys() equal
`lepus fit --json` / `lepus toys` on the same input (apart from timings and the command line)."""
import json
import subprocess

import numpy as np
import pytest

from conftest import conformance, read_quiet

VOLATILE = {"timings", "command_line"}


def run_cli(cli, *args):
    out = subprocess.run([cli, *args], check=False, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out


def same(a, b):
    return {k: v for k, v in a.items() if k not in VOLATILE} == {k: v for k, v in b.items() if k not in VOLATILE}


CASES = [
    ("sym_poi_dense.hdf5", [], {}),
    ("asym_noi_sparse.hdf5", [], {}),
    ("bblite_mixed_masked.hdf5", [], {}),
    ("bblite_mixed_masked.hdf5", ["--chisq-fit"], dict(data_term="chisq")),
    ("bblite_mixed_masked.hdf5", ["--bin-by-bin-stat-type", "normal-additive"], dict(bin_by_bin_stat_type="normal-additive")),
    ("bblite_mixed_masked.hdf5", ["--bin-by-bin-stat-mode", "full"], dict(bin_by_bin_stat_mode="full")),
    ("asym_noi_dense.hdf5", ["--asimov", "--set", "sig=1.2", "--freeze", "bkgshape"],
     dict(asimov=True, set={"sig": 1.2}, freeze=["bkgshape"])),
    ("asym_noi_dense.hdf5", ["--no-bbstat", "--poi-positive"], dict(bbstat=False, poi_positive=True)),
]


@pytest.mark.parametrize("name,flags,kw", CASES, ids=[f"{c[0]}{''.join(c[1])}" for c in CASES])
def test_fit_json_identical(cli, tmp_path, name, flags, kw):
    path = conformance(name)
    out = tmp_path / "fit.json"
    run_cli(cli, "fit", path, "--threads", "1", "--json", str(out), *flags)
    expected = json.loads(out.read_text())
    result = read_quiet(path).fit(threads=1, **kw)
    got = result.to_dict()
    assert same(got, expected)
    values = np.array([p["value"] for p in expected["parameters"]])
    np.testing.assert_array_equal(result.values, values)  # bitwise: same engine, same inputs
    assert result.nll == expected["nll"]


def test_impacts_json_identical(cli, tmp_path):
    path = conformance("bblite_mixed_masked.hdf5")
    out = tmp_path / "fit.json"
    run_cli(cli, "fit", path, "--threads", "1", "--json", str(out), "--global-impacts")
    expected = json.loads(out.read_text())["impacts"]
    m = read_quiet(path)
    impacts = m.impacts(m.fit(threads=1))
    arrays = impacts.pop("arrays")
    assert impacts == expected
    # The arrays carry the same numbers.
    t = arrays["targets"].index(expected["targets"][0])
    j = arrays["parameters"].index("norm_mc")
    assert arrays["nominal"][t, j] == expected["nominal"][expected["targets"][0]]["norm_mc"]
    assert arrays["nominal"].shape == (len(arrays["targets"]), len(arrays["parameters"]))


def test_impacts_without_groups(synthetic):
    impacts = synthetic.impacts(synthetic.fit(threads=1), global_impacts=False, groups=False)
    assert "grouped_nominal" not in impacts and "global" not in impacts and not impacts["has_global"]
    extra = synthetic.impacts(synthetic.fit(threads=1), groups={"ours": "syst[12]"})
    assert "ours" in extra["groups"]


def test_scan_matches_cli(cli, tmp_path):
    path = conformance("sym_poi_dense.hdf5")
    m = read_quiet(path)
    name = m.parameter_names[0]
    out = tmp_path / "scan.json"
    run_cli(cli, "scan", path, "--threads", "1", "--param", name, "--points", "5", "--range", "0.8", "1.2",
            "--json", str(out))
    expected = [s for s in json.loads(out.read_text())["scans"] if s["name"] == name][0]
    np.testing.assert_allclose(expected["values"], np.linspace(0.8, 1.2, 5), rtol=1e-15)
    scan = m.scan(name, expected["values"], m.fit(threads=1))
    np.testing.assert_array_equal(scan["values"], expected["values"])
    np.testing.assert_allclose(scan["dnll"], expected["dnll"], rtol=1e-12, atol=1e-12)
    assert scan["status"] == expected["status"]


def test_toys_json_identical(cli, tmp_path):
    path = conformance("bblite_mixed_masked.hdf5")
    out = tmp_path / "toys.json"
    run_cli(cli, "toys", path, "--ntoys", "6", "--seed", "5", "--threads", "1", "--json", str(out))
    expected = json.loads(out.read_text())
    m = read_quiet(path)
    toys = m.toys(6, 5, threads=1)
    for key in ["converged", "pulls", "gof", "truth", "status_counts", "ntoys", "seed", "mode"]:
        assert toys[key] == expected[key], key
    assert toys["values"].shape == (6, len(m.parameter_names))
