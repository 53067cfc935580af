#!/usr/bin/python3
"""Pickle fixtures for lepus' pickle decoder (io/src/pickle.cc) and rabbit `meta` reader
(io/src/rabbit_meta.cc), written by Python's own pickle module (an independent encoder).

    make_pickles.py OUTDIR [--big N]

hist, boost-histogram and numpy are not needed (nor installed here): the classes are the
stand-ins of hist_standins.py (beside this script, shared with tests/rabbit_corpus/writer.py),
with the same module and qualified names, whose pickling reproduces, byte for byte, the stream
the real libraries produce; the upstream code they mirror is listed there. The dicts follow
  * rabbit: rabbit/tensorwriter.py, TensorWriter.add_channel ({"axes": [...], "masked": ...,
    "flow": ...}, unmasked channels before masked ones) and write() (channel_info,
    symmetric_tensor, systematic_type, meta_info added to the user's dict); wums/ioutils.py,
    pickle_dump_h5py (H5Pickler, protocol 5, no buffer_callback: buffers go in-band).
"""
import json
import math
import os
import pickle
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hist_standins import (  # noqa: E402
    boolean, install_numpy, integer, intcat, ndarray, npscalar, object_of, regular, strcat,
    variable)

# ---- the fixtures ----------------------------------------------------------------------------

def rabbit_meta(variant):
    """The dict rabbit's TensorWriter.write pickles (63 unmasked bins, 12 masked)."""
    channels = {
        "sig": {"axes": [regular(6, 25, 55, "pt", "p_{T} (GeV)", flow=False),
                         variable([-2.4, -1.2, 0.0, 1.2, 2.4], "eta", flow=False),
                         intcat([-1, 1], "charge")],
                "masked": False, "flow": False},
        "ctl": {"axes": [integer(0, 3, family="boost_histogram.axis", flow=False,
                                 meta={"metadata": "njets"}),
                         strcat(["a", "b", "c"], "region")],
                "masked": False, "flow": False},
        "tr": {"axes": [regular(3, 1.0, 1000.0, "mass", transform=("log",)),
                        regular(2, 0.0, 4.0, "x2", transform=("pow", 2.0))],
               "masked": False, "flow": False},
        "gen": {"axes": [regular(4, 0, 8, "ptgen"), boolean("pass")],
                "masked": True, "flow": True},
    }
    meta = {"meta_info": {"command": "rabbit_text2hdf5.py card.txt -o out",
                          "time": "2026-01-01 00:00:00", "git_hash": "0123abc",
                          "args": {"sparse": False, "nthreads": 4, "scale": 1.5},
                          "np_number": npscalar(2.5, "f8"), "seeds": ndarray([1, 2, 3], "i8"),
                          "custom": object_of("mylib.provenance", "Record")},
            "user_note": "from the fixture script"}
    if variant == "masked_first":
        channels = {"gen": channels.pop("gen"), **channels}
    if variant == "unknown_axis":
        channels["sig"]["axes"][1] = object_of("mylib.axes", "MyAxis")
    if variant == "extra_channel_key":
        channels["ctl"]["start"] = 0
    if variant == "other_transform":
        channels["tr"]["axes"][0] = regular(3, 1.0, 1000.0, "mass", transform=("other",))
    meta.update({"channel_info": channels,
                 "symmetric_tensor": variant != "asymmetric",
                 "systematic_type": "normal" if variant in ("normal", "asymmetric")
                 else "log_normal"})
    if variant == "bad_type":
        meta["systematic_type"] = "gaussian"
    return meta


def values():
    """Every value family, with its expected JSON rendering (pickle.h ToJson)."""
    shared = [1, 2]
    v = {
        "none": None, "true": True, "false": False,
        "ints": [0, 1, 255, 256, 65535, 65536, -1, -129, 2 ** 31 - 1, 2 ** 31, -(2 ** 31),
                 -(2 ** 31) - 1, 2 ** 63 - 1, -(2 ** 63)],
        "bigints": [2 ** 64, -(2 ** 70), 10 ** 30],
        "floats": [0.0, -1.5, 1e300, 5e-324, float("inf"), float("-inf"), float("nan")],
        "strings": ["", "a", "x" * 300, "\u00e9t\u00e9 \u2603 \U0001f600"],
        "bytes": [b"", b"ab", b"\x00\xff" * 3, b"y" * 300],
        "bytearray": bytearray(b"xy"),
        "tuples": [(), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4)],
        "nested": {"a": [{"b": ({"c": [[]]},)}]},
        "set": {3}, "frozenset": frozenset({"k"}),
        "shared": {"first": shared, "second": shared},
        "keys": {1: "int key", (1, 2): "tuple key"},
        "arrays": {"f8": ndarray([1.5, -2.0, 3.25], "f8"),
                   "f4_big_endian": ndarray([0.5, 2.0], "f4", endian=">"),
                   "i4": ndarray([-1, 2, 3], "i4"), "u1": ndarray([0, 255], "u1"),
                   "b1": ndarray([True, False], "b1"), "i2": ndarray([-300, 300], "i2"),
                   "u8": ndarray([2 ** 40], "u8"),
                   "matrix": ndarray([1, 2, 3, 4, 5, 6], "i8", shape=(2, 3)),
                   "fortran": ndarray([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "f8", shape=(2, 3), fortran=True),
                   "scalar_f8": npscalar(0.25, "f8"), "scalar_i8": npscalar(-7, "i8")},
        "unknown": object_of("mylib.things", "Thing"),
    }

    def render(x):
        if isinstance(x, bool) or x is None or isinstance(x, str):
            return x
        if isinstance(x, int):
            return x if -(2 ** 63) <= x < 2 ** 63 else "<int of %d bytes>" % len(pickle.encode_long(x))
        if isinstance(x, float):
            return "nan" if x != x else ("inf" if x == math.inf else "-inf" if x == -math.inf else x)
        if isinstance(x, (bytes, bytearray)):
            ok = len(x) <= 64 and all(0x20 <= c < 0x7f for c in x)
            return "b'" + x.decode() + "'" if ok else "<bytes of %d>" % len(x)
        if isinstance(x, (list, tuple, set, frozenset)):
            return [render(i) for i in x]
        if isinstance(x, dict):
            out = {}
            for k, val in x.items():
                key = k if isinstance(k, str) else (str(k) if isinstance(k, int) else
                                                    "<%s of %d>" % (type(k).__name__, len(k)))
                out[key] = render(val)
            return out
        if isinstance(x, ndarray):
            return [render(i) if x.code != "b1" else int(i) for i in x.values]
        if isinstance(x, npscalar):
            return render(x.array.values[0])
        return {"__class__": type(x).__module__ + "." + type(x).__qualname__}

    return v, render(v)


def main():
    out = sys.argv[1]
    big = int(sys.argv[sys.argv.index("--big") + 1]) if "--big" in sys.argv else 0
    os.makedirs(out, exist_ok=True)

    def dump(name, obj, protocol):
        with open(os.path.join(out, name), "wb") as f:
            pickle.Pickler(f, protocol=protocol).dump(obj)  # as wums.ioutils.H5Pickler

    for protocol in (2, 3, 4, 5):
        install_numpy("numpy.core" if protocol < 4 else "numpy._core")
        dump("rabbit_p%d.pkl" % protocol, rabbit_meta(""), protocol)
        obj, expected = values()
        dump("values_p%d.pkl" % protocol, obj, protocol)
    with open(os.path.join(out, "values.json"), "w") as f:
        json.dump(expected, f, indent=1)
    install_numpy("numpy._core")
    for variant in ("normal", "asymmetric", "masked_first", "unknown_axis", "extra_channel_key",
                    "other_transform", "bad_type"):
        dump("rabbit_%s_p5.pkl" % variant, rabbit_meta(variant), 5)
    if big:
        meta = rabbit_meta("")
        meta["meta_info"] = {"entry_%06d" % i: {"value": i * 0.5, "tag": "t%d" % i}
                             for i in range(big)}
        dump("rabbit_big_p5.pkl", meta, 5)


if __name__ == "__main__":
    main()
