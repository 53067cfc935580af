#!/usr/bin/python3
"""Pickle fixtures for lepus' pickle decoder (io/src/pickle.cc) and rabbit `meta` reader
(io/src/rabbit_meta.cc), written by Python's own pickle module (an independent encoder).

    make_pickles.py OUTDIR [--big N]

hist, boost-histogram and numpy are not needed (nor installed here): the classes are stand-ins
with the same module and qualified names whose pickling reproduces, byte for byte, the stream
the real libraries produce (Python's pickler only sees the names, the reduce tuples and the
states). Mirrored upstream code:
  * numpy: numpy/_core/src/multiarray/methods.c, array_reduce_ex (protocol >= 5:
    array_reduce_ex_picklebuffer -> (numpy._core.numeric._frombuffer, (PickleBuffer(a), dtype,
    shape, "C")); below 5: array_reduce -> (numpy._core.multiarray._reconstruct, (ndarray, (0,),
    b"b"), (1, shape, dtype, is_fortran, a.tobytes()))); descriptor.c, arraydescr_reduce ->
    (numpy.dtype, ("f8", False, True), (3, "<", None, None, None, -1, -1, 0)); scalartypes.c,
    gentype_reduce -> (numpy._core.multiarray.scalar, (dtype, raw bytes)). numpy 1.x spells the
    module numpy.core, 2.x numpy._core; both are written below.
  * boost-histogram: src/boost_histogram/axis/__init__.py, class Axis (__getstate__ returns
    {"_ax": self._ax}; no __reduce__, so object.__reduce_ex__ gives NEWOBJ(cls, ()) + BUILD);
    include/bh_python/make_pickle.hpp (tuple_oarchive: a version 0 before every non-primitive
    member, std::vector<arithmetic> as a numpy array, std::vector<std::string> as its size then
    the strings, the metadata dict as is) over Boost.Histogram's serialize() member order
    (axis/regular.hpp: transform, size, meta, min, delta; variable.hpp and category.hpp: seq,
    meta; integer.hpp: size, meta, min; transform::pow: power; bh_python/transform.hpp
    func_transform: forward, inverse, convert, name; regular_numpy.hpp: regular's then stop);
    include/bh_python/axis.hpp for the core type names and their options.
  * hist: src/hist/axis/__init__.py (subclasses of the boost_histogram axes in module
    hist.axis; name and label are stored in the core axis' metadata dict, "name" then "label").
  * rabbit: rabbit/tensorwriter.py, TensorWriter.add_channel ({"axes": [...], "masked": ...,
    "flow": ...}, unmasked channels before masked ones) and write() (channel_info,
    symmetric_tensor, systematic_type, meta_info added to the user's dict); wums/ioutils.py,
    pickle_dump_h5py (H5Pickler, protocol 5, no buffer_callback: buffers go in-band).
"""
import copyreg
import json
import math
import os
import pickle
import struct
import sys
import types


def module(name):
    parts = name.split(".")
    for i in range(1, len(parts) + 1):
        full = ".".join(parts[:i])
        if full not in sys.modules:
            mod = types.ModuleType(full)
            sys.modules[full] = mod
            if i > 1:
                setattr(sys.modules[".".join(parts[: i - 1])], parts[i - 1], mod)
    return sys.modules[name]


def define(modname, obj, name=None):
    name = name or obj.__name__
    obj.__module__ = modname
    obj.__qualname__ = name
    if isinstance(obj, type):
        obj.__name__ = name
    setattr(module(modname), name, obj)
    return obj


# ---- numpy stand-ins -------------------------------------------------------------------------

NUMPY_CORE = "numpy._core"  # switched to "numpy.core" for the numpy 1.x variants


class dtype:
    def __init__(self, code, endian):
        self.code, self.endian = code, endian

    def __reduce__(self):
        return (dtype, (self.code, False, True), (3, self.endian, None, None, None, -1, -1, 0))


class ndarray:
    def __init__(self, values, code, shape=None, endian="<", fortran=False):
        self.values = list(values)
        self.code = code
        self.shape = tuple(shape) if shape is not None else (len(self.values),)
        self.endian = "|" if code in ("b1", "i1", "u1") else endian
        self.fortran = fortran

    def tobytes(self):
        fmt = {"f8": "d", "f4": "f", "i8": "q", "i4": "i", "i2": "h", "i1": "b",
               "u8": "Q", "u4": "I", "u2": "H", "u1": "B", "b1": "?"}[self.code]
        values = self.values
        if self.fortran:  # stored column-major
            rows, cols = self.shape
            values = [self.values[r * cols + c] for c in range(cols) for r in range(rows)]
        order = ">" if self.endian == ">" else "<"
        return struct.pack(order + fmt * len(values), *values)

    def __reduce_ex__(self, protocol):
        descr = dtype(self.code, self.endian)
        if protocol >= 5:
            fn = getattr(module(NUMPY_CORE + ".numeric"), "_frombuffer")
            return (fn, (pickle.PickleBuffer(bytearray(self.tobytes())), descr, self.shape,
                         "F" if self.fortran else "C"))
        fn = getattr(module(NUMPY_CORE + ".multiarray"), "_reconstruct")
        return (fn, (ndarray, (0,), b"b"),
                (1, self.shape, descr, self.fortran, self.tobytes()))


class npscalar:
    def __init__(self, value, code):
        self.array = ndarray([value], code)

    def __reduce__(self):
        fn = getattr(module(NUMPY_CORE + ".multiarray"), "scalar")
        return (fn, (dtype(self.array.code, self.array.endian), self.array.tobytes()))


def install_numpy(core):
    global NUMPY_CORE
    NUMPY_CORE = core
    define("numpy", dtype, "dtype")
    define("numpy", ndarray, "ndarray")
    define(core + ".numeric", lambda *a: None, "_frombuffer")
    define(core + ".multiarray", lambda *a: None, "_reconstruct")
    define(core + ".multiarray", lambda *a: None, "scalar")


# ---- boost-histogram / hist stand-ins --------------------------------------------------------

class CoreAxis:
    """A boost_histogram._core.axis.<type> object: pickled as NEWOBJ(cls, ()) + BUILD(tuple)."""

    def __init__(self, state):
        self.state = state

    def __getstate__(self):
        return self.state

    def __setstate__(self, state):
        self.state = state


CORE = {}
for _name in ["regular_none", "regular_uflow", "regular_oflow", "regular_uoflow",
              "regular_uoflow_growth", "regular_circular", "regular_numpy", "regular_pow",
              "regular_trans", "variable_none", "variable_uoflow", "integer_none",
              "integer_uoflow", "integer_growth", "category_int", "category_int_growth",
              "category_str", "category_str_none", "boolean"]:
    CORE[_name] = define("boost_histogram._core.axis", type(_name, (CoreAxis,), {}))


def _internal_conversion(name):  # boost_histogram/axis/transform.py
    return name


define("boost_histogram.axis.transform", _internal_conversion)


class WrapperAxis:
    """boost_histogram.axis.Axis: __getstate__ returns {"_ax": core}."""

    def __init__(self, core):
        self._ax = core

    def __getstate__(self):
        return {"_ax": self._ax}

    def __setstate__(self, state):
        self._ax = state["_ax"]


WRAP = {}
for _family in ["hist.axis", "boost_histogram.axis"]:
    for _name in ["Regular", "Variable", "Integer", "IntCategory", "StrCategory", "Boolean"]:
        WRAP[_family + "." + _name] = define(_family, type(_name, (WrapperAxis,), {}))


def hist_meta(name, label=""):
    return {"name": name, "label": label}  # hist: name set first, then the label setter


def regular(bins, lo, hi, name, label="", flow=True, family="hist.axis", transform=None,
            meta=None, core=None):
    meta = hist_meta(name, label) if meta is None else meta
    if transform is None:
        core = core or ("regular_uoflow" if flow else "regular_none")
        state = (0, 0, bins, meta, float(lo), float(hi - lo))
        if core == "regular_numpy":
            state = state + (float(hi),)
    elif transform[0] == "pow":
        p = transform[1]
        core = "regular_pow"
        state = (0, 0, float(p), bins, meta, lo ** p, hi ** p - lo ** p)
    else:
        fwd, inv = {"log": ("_log_fn", "_exp_fn"), "sqrt": ("_sqrt_fn", "_sq_fn"),
                    "other": ("my_fwd", "my_inv")}[transform[0]]
        f = {"log": math.log, "sqrt": math.sqrt, "other": math.log}[transform[0]]
        core = "regular_trans"
        state = (0, 0, fwd, inv, _internal_conversion, transform[0], bins, meta, f(lo),
                 f(hi) - f(lo))
    return WRAP[family + ".Regular"](CORE[core](state))


def variable(edges, name, label="", flow=True, family="hist.axis"):
    core = "variable_uoflow" if flow else "variable_none"
    return WRAP[family + ".Variable"](CORE[core]((0, ndarray(edges, "f8"),
                                                 hist_meta(name, label))))


def integer(start, stop, name=None, flow=True, family="hist.axis", meta=None):
    core = "integer_uoflow" if flow else "integer_none"
    meta = hist_meta(name) if meta is None else meta
    return WRAP[family + ".Integer"](CORE[core]((0, stop - start, meta, start)))


def intcat(cats, name, flow=True):
    core = "category_int" if flow else "category_int_growth"
    return WRAP["hist.axis.IntCategory"](CORE[core]((0, ndarray(cats, "i4"), hist_meta(name))))


def strcat(cats, name, flow=True):
    core = "category_str" if flow else "category_str_none"
    return WRAP["hist.axis.StrCategory"](CORE[core]((0, len(cats), *cats, hist_meta(name))))


def boolean(name):
    return WRAP["hist.axis.Boolean"](CORE["boolean"]((0, 2, hist_meta(name), 0)))


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


class Opaque:
    def __init__(self, payload):
        self.payload = payload


def object_of(modname, name):
    cls = getattr(sys.modules.get(modname), name, None) or define(modname, type(name, (Opaque,), {}))
    return cls({"x": 1})


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
