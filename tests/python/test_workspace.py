"""HistFactory JSON workspaces through lepus.read (docs/histfactory.md "Reading workspaces")."""
import gzip
import json
import os

import pytest

import lepus

DATA = os.path.join(os.path.dirname(__file__), "..", "data", "histfactory")
WS = os.path.join(DATA, "two_channel.json")


def test_read_workspace_and_gzip(tmp_path):
    m = lepus.read(WS)
    assert m.systematics[:4] == ["jes", "lumi", "mu", "sig_theory"]
    assert m.processes == ["background", "other", "signal"]
    gz = tmp_path / "ws.bin"
    with open(WS, "rb") as f:
        gz.write_bytes(gzip.compress(f.read()))
    assert lepus.read(gz).systematics == m.systematics


def test_read_workspace_options():
    m = lepus.read(WS, patches=[os.path.join(DATA, "two_channel_patch.json")])
    assert "other_norm" in m.systematics
    m = lepus.read(WS, patchset=os.path.join(DATA, "two_channel_patchset.json"),
                   patch_name="mass_300", measurement="fixed_jes",
                   normsys_interp="code1", histosys_interp="code0")
    assert len(m.systematics) == 14


def test_read_workspace_errors(tmp_path):
    with pytest.raises(lepus.InputError, match="has no measurement named 'nope'"):
        lepus.read(WS, measurement="nope")
    with pytest.raises(TypeError):
        lepus.read(WS, patches="one.json")
    ws = json.load(open(WS))
    ws["channels"][0]["samples"][0]["modifiers"][0]["type"] = "normfactr"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(ws))
    with pytest.raises(lepus.InputError,
                       match=r"channels\[0\]\.samples\[0\]\.modifiers\[0\]\.type: is 'normfactr'"):
        lepus.read(bad)


def test_hypotest_and_limit_match_the_cli(cli, tmp_path):
    """Model.hypotest / Model.upper_limit give the numbers of `lepus hypotest` / `lepus limit`."""
    import json
    import subprocess
    ws = os.path.join(os.path.dirname(__file__), "..", "data", "conformance", "histfactory", "2bin_histosys.json")
    m = lepus.read(ws)
    h = m.hypotest(1.0)
    assert h["status"] == "ok"
    out = tmp_path / "h.json"
    subprocess.run([cli, "hypotest", ws, "--poi-value", "1", "--json", str(out)], check=True, capture_output=True)
    c = json.load(open(out))
    assert h["cls_obs"] == pytest.approx(c["cls_obs"], rel=1e-12)
    assert h["cls_exp"] == pytest.approx(c["cls_exp"], rel=1e-12)
    assert h["q_obs"] == pytest.approx(c["q_obs"], rel=1e-12)
    lim = m.upper_limit(0.95)
    out = tmp_path / "l.json"
    subprocess.run([cli, "limit", ws, "--json", str(out)], check=True, capture_output=True)
    c = json.load(open(out))
    assert lim["observed"] == pytest.approx(c["observed"], rel=1e-9)
    assert lim["expected"] == pytest.approx(c["expected"], rel=1e-9)
    # The test at the observed limit gives CLs = 1 - CL.
    assert m.hypotest(lim["observed"])["cls_obs"] == pytest.approx(0.05, rel=1e-6)
    with pytest.raises(ValueError, match="no parameter named"):
        m.hypotest(1.0, poi="nope")
