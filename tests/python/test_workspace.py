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
