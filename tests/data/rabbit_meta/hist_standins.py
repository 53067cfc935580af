"""Stand-ins for the classes whose pickles rabbit's metadata contains: numpy arrays and scalars,
boost-histogram and hist axes. Python's pickler only sees module and qualified names, reduce
tuples and states, so objects of these classes pickle, byte for byte, as the real libraries'
objects do (neither hist nor boost-histogram is needed or installed). Shared by
tests/data/rabbit_meta/make_pickles.py (pickle fixtures, standard library only) and
tests/rabbit_corpus/writer.py (rabbit's pickled `meta` group in the corpus files).

The numpy stand-ins are installed only by install_numpy() (never in a process that imported the
real numpy, whose module they would overwrite); with the real numpy, call use_numpy(np) and the
axes hold real arrays, which pickle themselves. Mirrored upstream code:
  * numpy: numpy/_core/src/multiarray/methods.c, array_reduce_ex (protocol >= 5:
    array_reduce_ex_picklebuffer -> (numpy._core.numeric._frombuffer, (PickleBuffer(a), dtype,
    shape, "C")); below 5: array_reduce -> (numpy._core.multiarray._reconstruct, (ndarray, (0,),
    b"b"), (1, shape, dtype, is_fortran, a.tobytes()))); descriptor.c, arraydescr_reduce ->
    (numpy.dtype, ("f8", False, True), (3, "<", None, None, None, -1, -1, 0)); scalartypes.c,
    gentype_reduce -> (numpy._core.multiarray.scalar, (dtype, raw bytes)). numpy 1.x spells the
    module numpy.core, 2.x numpy._core; install_numpy() takes either.
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
"""
import math
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
    """Defines the numpy stand-ins as numpy.dtype, numpy.ndarray and <core>.numeric /
    <core>.multiarray functions. Refuses when the real numpy is loaded."""
    global NUMPY_CORE
    real = sys.modules.get("numpy")
    if real is not None and getattr(real, "__file__", None):
        raise RuntimeError("install_numpy: the real numpy is imported; use use_numpy(numpy)")
    NUMPY_CORE = core
    define("numpy", dtype, "dtype")
    define("numpy", ndarray, "ndarray")
    define(core + ".numeric", lambda *a: None, "_frombuffer")
    define(core + ".multiarray", lambda *a: None, "_reconstruct")
    define(core + ".multiarray", lambda *a: None, "scalar")


def array(values, code):
    """The array inside an axis state (Variable edges, IntCategory values): a stand-in ndarray
    unless use_numpy() was called."""
    return ARRAY(values, code)


ARRAY = ndarray


def use_numpy(np):
    """Axes built from now on hold real numpy arrays (np.array(values, dtype=code))."""
    global ARRAY
    ARRAY = lambda values, code: np.array(values, dtype=code)  # noqa: E731


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
    return WRAP[family + ".Variable"](CORE[core]((0, array(edges, "f8"),
                                                 hist_meta(name, label))))


def integer(start, stop, name=None, flow=True, family="hist.axis", meta=None):
    core = "integer_uoflow" if flow else "integer_none"
    meta = hist_meta(name) if meta is None else meta
    return WRAP[family + ".Integer"](CORE[core]((0, stop - start, meta, start)))


def intcat(cats, name, flow=True):
    core = "category_int" if flow else "category_int_growth"
    return WRAP["hist.axis.IntCategory"](CORE[core]((0, array(cats, "i4"), hist_meta(name))))


def strcat(cats, name, flow=True):
    core = "category_str" if flow else "category_str_none"
    return WRAP["hist.axis.StrCategory"](CORE[core]((0, len(cats), *cats, hist_meta(name))))


def boolean(name):
    return WRAP["hist.axis.Boolean"](CORE["boolean"]((0, 2, hist_meta(name), 0)))



class Opaque:
    def __init__(self, payload):
        self.payload = payload


def object_of(modname, name):
    cls = getattr(sys.modules.get(modname), name, None) or define(modname, type(name, (Opaque,), {}))
    return cls({"x": 1})


