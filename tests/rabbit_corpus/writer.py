"""A numpy + h5py re-implementation of what rabbit's TensorWriter.write() puts in a fit input.

Follows rabbit/tensorwriter.py and rabbit/h5pyutils_write.py of github.com/WMass/rabbit (read at
commit 948a94a, 2026): the same dataset names, dtypes, shapes, flattening with the int64
`original_shape` attribute, chunking (one chunk of at most chunk_bytes / itemsize elements, none
for empty arrays), the sparse layout (hnorm_sparse / hlogk_sparse with canonical row-major sorted
indices and an int64 `dense_shape` attribute), string lists as vlen str with gzip,
hsystgroupidxs as vlen int32, hnoiidxs int32, hconstraintweights, unconstrained systematics first
in hsysts (each block natural-sorted), signals first in hprocs (each block sorted), masked
channels' rows after the unmasked ones, hdata_var only when it differs from hdata_obs,
hdata_cov_inv, external_terms/<name>/{params, grad_values, hess_dense | hess_sparse} and
hbetavariations [nbinsfull, nbins, nproc] (dense only).

The pickled `meta` group is written as TensorWriter.write() + wums.ioutils.pickle_dump_h5py
(github.com/WMass/wums, wums/ioutils.py, read at commit 564a2a2) write it, first in the file: the
dict {**meta_data_dict, "channel_info": {name: {"axes": [hist axes], "masked": bool,
"flow": bool}}, "symmetric_tensor": bool, "systematic_type": str} plus "meta_info" ({} unless
given), pickled with protocol 5 (H5Pickler's default; no buffer_callback, so numpy buffers go
in-band) into the group `meta` (int64 attribute `narf_h5py_pickle_protocol_version` = 1),
dataset `pickle_data`: uint8, shape (0,) grown by resize at every write of the pickler,
maxshape (None,), chunks of 1 MiB, filter `hdf5plugin.Blosc(cname="lz4")` = HDF5 filter 32001
(Blosc1) with options (0, 0, 0, 0, 5, 1, 1) (clevel 5, byte shuffle, lz4). h5py writes that
filter here through Debian's plugin (hdf5-filter-plugin-blosc-serial, scripts/setup.sh); where
the plugin is missing, write(meta_compression="gzip") is the fallback (make_corpus.py says so).
The hist axes are the stand-ins of tests/data/rabbit_meta/hist_standins.py (hist and
boost-histogram are not installed), which pickle as the real classes do; their arrays are real
numpy arrays. A channel's axes are given as Regular / Variable below.

Differences from rabbit, on purpose:
  * inputs are numpy arrays shaped like the channel's axes, not hist objects;
  * the tensor's compression is gzip (or none) instead of Blosc2 (HDF5 filter 32026: no
    writable plugin here); sparse `values` are never compressed, as in rabbit;
  * add_bin_by_bin_stat_to_data_cov adds diag(sum over processes of sumw2) over the fitted bins.
    Current rabbit writes `np.add(data_covariance, np.diag(sumw2))` with sumw2 of shape
    [nbinsfull, nproc] since commit a5d105d (2025-06): np.diag of a 2-D array is its diagonal,
    so rabbit raises a broadcasting error unless nproc == 1 or nproc == nbins, where it silently
    adds the wrong numbers. We implement the evident intent (the pre-a5d105d behaviour, when
    sumw2 was [nbinsfull]).
"""

import math
import os
import pickle
import re
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data",
                                "rabbit_meta"))
import hist_standins  # noqa: E402

hist_standins.use_numpy(np)  # the axes' arrays are real numpy arrays (pickled by numpy itself)

LOGK_EPSILON = math.log(1e-3)  # rabbit's cutoff for sign flips / zeros in a variation


def natural_sort_key(s):
    parts = re.split(r"(\d+)", s)
    return [int(part) if part.isdigit() else part.lower() for part in parts]


def natural_sort(strings):
    return sorted(strings, key=natural_sort_key)


def get_logk(syst, norm, kfac=1.0, systematic_type="log_normal"):
    """rabbit's TensorWriter.get_logk (no clipping: clipSystVariations is False in rabbit)."""
    syst = np.asarray(syst, dtype=np.float64)
    norm = np.asarray(norm, dtype=np.float64)
    if not np.all(np.isfinite(syst)):
        raise RuntimeError("NaN or Inf values encountered in systematic!")
    if systematic_type == "log_normal":
        with np.errstate(divide="ignore", invalid="ignore"):
            logk = kfac * np.log(syst / norm)
        return np.where(np.equal(np.sign(norm * syst), 1), logk, LOGK_EPSILON)
    if systematic_type == "normal":
        return kfac * (syst - norm)
    raise RuntimeError(f"invalid systematic_type {systematic_type}")


def write_flat_in_chunks(arr, group, name, max_chunk_bytes, compress=True, compression="gzip"):
    """h5pyutils_write.writeFlatInChunks with gzip in place of Blosc2."""
    arr = np.asarray(arr)
    flat = arr.reshape(-1)
    esize = flat.dtype.itemsize
    if flat.size == 0:
        kwargs = {"chunks": None}
        chunksize = 1
    else:
        chunksize = int(min(flat.size, max(1, math.floor(max_chunk_bytes / esize))))
        kwargs = {"chunks": (chunksize,)}
        if compress and compression is not None:
            kwargs["compression"] = compression
    ds = group.create_dataset(name, flat.shape, dtype=flat.dtype, **kwargs)
    for i in range(0, flat.size, chunksize):
        out = flat[i : i + chunksize]
        if np.count_nonzero(out):  # rabbit skips all-zero chunks (they read back as 0)
            ds[i : i + chunksize] = out
    ds.attrs["original_shape"] = np.array(arr.shape, dtype="int64")
    return flat.size * esize


def write_sparse(indices, values, dense_shape, group, name, max_chunk_bytes, compression="gzip"):
    out = group.create_group(name)
    write_flat_in_chunks(indices, out, "indices", max_chunk_bytes, compression=compression)
    write_flat_in_chunks(values, out, "values", max_chunk_bytes, compress=False)
    out.attrs["dense_shape"] = np.array(dense_shape, dtype="int64")


# --- axes: what hist.axis.Regular / Variable are for the writer ---------------------------------
class Regular:
    """hist.axis.Regular(bins, start, stop, name=name, label=label, underflow=flow,
    overflow=flow). `edges` as Boost.Histogram computes them (the reader's expectation)."""

    def __init__(self, bins, start, stop, name, label="", flow=True):
        self.bins, self.start, self.stop = int(bins), float(start), float(stop)
        self.name, self.label, self.flow = name, label, flow
        self.size = self.bins
        self.extent = self.bins + (2 if flow else 0)
        delta = self.stop - self.start
        self.edges = [(1 - i / self.bins) * self.start + i / self.bins * (self.start + delta)
                      for i in range(self.bins + 1)]
        self._hist = None

    def hist_axis(self):  # one object per axis, as in rabbit (shared axes pickle as memo refs)
        if self._hist is None:
            self._hist = hist_standins.regular(self.bins, self.start, self.stop, self.name,
                                               self.label, flow=self.flow)
        return self._hist


class Variable:
    """hist.axis.Variable(edges, name=name, label=label, underflow=flow, overflow=flow)."""

    def __init__(self, edges, name, label="", flow=True):
        self.edges = [float(e) for e in edges]
        self.name, self.label, self.flow = name, label, flow
        self.size = len(self.edges) - 1
        self.extent = self.size + (2 if flow else 0)
        self._hist = None

    def hist_axis(self):
        if self._hist is None:
            self._hist = hist_standins.variable(self.edges, self.name, self.label,
                                                flow=self.flow)
        return self._hist


# --- wums.ioutils.pickle_dump_h5py ----------------------------------------------------------------
WUMS_BLOSC = (32001, (0, 0, 0, 0, 5, 1, 1))  # hdf5plugin.Blosc(cname="lz4")


class H5IO:
    """wums.ioutils.H5IO in mode "w": a resizable uint8 dataset the pickler writes into."""

    def __init__(self, name, group, compression="blosc"):
        if compression == "blosc":
            kw = {"compression": WUMS_BLOSC[0], "compression_opts": WUMS_BLOSC[1]}
        elif compression == "gzip":
            kw = {"compression": "gzip"}
        else:
            kw = {}
        self.dset = group.create_dataset(name, shape=(0,), dtype=np.ubyte, maxshape=(None,),
                                         chunks=(1024 * 1024,), **kw)

    def write(self, b, /):
        flat = memoryview(b) if type(b) is bytes else pickle.PickleBuffer(b).raw()
        old = self.dset.size
        n = flat.nbytes
        self.dset.resize((old + n,))
        if n:
            self.dset[old:] = np.frombuffer(flat, dtype=np.ubyte)
        return n


def pickle_dump_h5py(name, obj, h5out, compression="blosc"):
    """wums.ioutils.pickle_dump_h5py: H5Pickler(group) is a pickle.Pickler(H5IO, protocol=5)
    whose persistent_id / reducer_override hooks only act on h5py objects, H5PickleProxy and
    H5Buffer (none in rabbit's meta dict), so a plain Pickler writes the same bytes."""
    group = h5out.create_group(name)
    group.attrs["narf_h5py_pickle_protocol_version"] = 1  # CURRENT_PROTOCOL_VERSION (int64)
    pickle.Pickler(H5IO("pickle_data", group, compression), protocol=5).dump(obj)
    return group


class TensorWriter:
    def __init__(
        self,
        sparse=False,
        systematic_type="log_normal",
        allow_negative_expectation=False,
        add_bin_by_bin_stat_to_data_cov=False,
    ):
        self.sparse = sparse
        self.systematic_type = systematic_type
        self.allow_negative_expectation = allow_negative_expectation
        self.add_bin_by_bin_stat_to_data_cov = add_bin_by_bin_stat_to_data_cov
        self.symmetric_tensor = True
        self.signals, self.bkgs = set(), set()
        self.channels = {}  # name -> {"shape", "masked"}; unmasked first
        self.nbinschan = {}
        self.pseudodata_names = []  # rabbit: a set; we keep insertion order (deterministic)
        self.dict_systgroups = {}
        self.systsstandard, self.systsnoi = set(), set()
        self.systsnoconstraint, self.systscovariance = set(), set()
        self.dict_data_obs, self.dict_data_var, self.dict_pseudodata = {}, {}, {}
        self.data_covariance = None
        self.dict_norm, self.dict_sumw2 = {}, {}
        self.dict_logkavg, self.dict_logkhalfdiff = {}, {}
        self.dict_beta_variations = {}
        self.has_beta_variations = False
        self.external_terms = []
        self.dtype = "float64"
        self.idxdtype = "int64"
        self.chunk_bytes = 4 * 1024**2

    # --- channels, data, processes -------------------------------------------------------
    def add_channel(self, axes, name=None, masked=False, flow=False):
        """axes: list of Regular / Variable (rabbit: hist axes); flow (masked channels only, as
        in rabbit): the channel's bins include every axis' under- and overflow bins."""
        if flow and masked is False:
            raise NotImplementedError("Keeping underflow/overflow is currently only supported "
                                      "for masked channels")
        if name is None:
            name = f"ch{len(self.channels)}"
        axes = list(axes)
        shape = tuple(a.extent if flow else a.size for a in axes)
        self.nbinschan[name] = int(np.prod(shape))
        this = {"shape": shape, "masked": masked, "flow": flow, "axes": axes}
        if masked:
            self.channels[name] = this
        else:  # masked channels last
            self.channels = {
                **{k: v for k, v in self.channels.items() if not v["masked"]},
                name: this,
                **{k: v for k, v in self.channels.items() if v["masked"]},
            }
        for d in (self.dict_norm, self.dict_sumw2, self.dict_logkavg, self.dict_logkhalfdiff,
                  self.dict_beta_variations):
            d[name] = {}

    def _flat(self, h, channel):
        h = np.asarray(h, dtype=self.dtype)
        if h.ndim == 1 and h.size == self.nbinschan[channel]:  # flat input (convenience)
            h = h.reshape(self.channels[channel]["shape"])
        if h.shape != self.channels[channel]["shape"]:
            raise RuntimeError(f"shape {h.shape} != channel shape {self.channels[channel]['shape']}")
        return h.reshape(-1)

    def add_data(self, h, channel="ch0", variances=None):
        self.dict_data_obs[channel] = self._flat(h, channel)
        var = self._flat(h if variances is None else variances, channel)
        if (var < 0).any():
            raise ValueError("Negative variances encountered")
        self.dict_data_var[channel] = var

    def add_data_covariance(self, cov):
        self.data_covariance = np.array(cov, dtype=self.dtype)

    def add_pseudodata(self, h, name=None, channel="ch0"):
        if name is None:
            name = f"pseudodata_{len(self.pseudodata_names)}"
        if name not in self.pseudodata_names:
            self.pseudodata_names.append(name)
        self.dict_pseudodata.setdefault(channel, {})[name] = self._flat(h, channel)

    def add_process(self, h, name, channel="ch0", signal=False, variances=None):
        (self.signals if signal else self.bkgs).add(name)
        norm = self._flat(h, channel)
        if not self.allow_negative_expectation:
            norm = np.maximum(norm, 0.0)
        sumw2 = self._flat(h if variances is None else variances, channel)
        if (sumw2 < 0).any():
            raise ValueError("Negative variances encountered")
        self.dict_norm[channel][name] = norm
        self.dict_sumw2[channel][name] = sumw2
        self.dict_logkavg[channel][name] = {}
        self.dict_logkhalfdiff[channel][name] = {}

    # --- systematics ---------------------------------------------------------------------
    def _book_logk(self, d, logk, channel, process, syst):
        norm = self.dict_norm[channel][process]
        # rabbit: the systematic tensor is zero wherever the nominal is zero
        d[channel][process][syst] = np.where(np.equal(norm, 0.0), 0.0, logk)

    def _compute_asym_syst(self, logkup, logkdown, name, process, channel, symmetrize,
                           add_to_data_covariance, **kargs):
        var_name_out = name
        if symmetrize == "conservative":
            logkavg = np.where(np.abs(logkup) > np.abs(logkdown), logkup, logkdown)
        elif symmetrize == "average":
            logkavg = 0.5 * (logkup + logkdown)
        elif symmetrize in ("linear", "quadratic"):
            diff_fact = np.sqrt(3.0) if symmetrize == "quadratic" else 1.0
            logkavg = 0.5 * (logkup + logkdown)
            logkdiff = 0.5 * diff_fact * (logkup - logkdown)
            var_name_out = name + "SymAvg"
            self._book_logk(self.dict_logkavg, logkdiff, channel, process, name + "SymDiff")
            self.book_systematic(name + "SymDiff", add_to_data_covariance=add_to_data_covariance,
                                 **kargs)
        else:  # anything else (e.g. None, "none"): asymmetric
            if add_to_data_covariance:
                raise RuntimeError("add_to_data_covariance requires symmetric uncertainties")
            self.symmetric_tensor = False
            logkavg = 0.5 * (logkup + logkdown)
            self._book_logk(self.dict_logkhalfdiff, 0.5 * (logkup - logkdown), channel, process,
                            name)
        return logkavg, var_name_out

    def add_norm_systematic(self, name, process, channel, uncertainty,
                            add_to_data_covariance=False, groups=None, symmetrize="average",
                            **kargs):
        procs = process if isinstance(process, (list, tuple)) else [process]
        uncs = uncertainty if isinstance(uncertainty, list) else [uncertainty]
        if len(uncs) == 1:
            uncs = uncs * len(procs)
        var_name_out = name
        stype = "normal" if add_to_data_covariance else self.systematic_type
        for p, u in zip(procs, uncs):
            norm = self.dict_norm[channel][p]
            if isinstance(u, (list, tuple, np.ndarray)):
                logkup = get_logk(norm * u[0], norm, systematic_type=stype)
                logkdown = -get_logk(norm * u[1], norm, systematic_type=stype)
                # note: rabbit passes the whole `process` argument here and forwards **kargs
                # (not `groups`) to the SymDiff half of linear/quadratic
                logkavg, var_name_out = self._compute_asym_syst(
                    logkup, logkdown, name, p, channel, symmetrize, add_to_data_covariance,
                    **kargs)
            else:
                logkavg = get_logk(norm * u, norm, systematic_type=stype)
            self._book_logk(self.dict_logkavg, logkavg, channel, p, var_name_out)
        self.book_systematic(var_name_out, groups=groups,
                             add_to_data_covariance=add_to_data_covariance, **kargs)

    def add_systematic(self, h, name, process, channel, kfactor=1, mirror=True,
                       symmetrize="average", add_to_data_covariance=False, as_difference=False,
                       **kargs):
        norm = self.dict_norm[channel][process]
        stype = "normal" if add_to_data_covariance else self.systematic_type
        var_name_out = name
        if isinstance(h, (list, tuple)):
            up, down = self._flat(h[0], channel), self._flat(h[1], channel)
            if as_difference:
                up, down = norm + up, norm + down
            logkup = get_logk(up, norm, kfactor, stype)
            logkdown = -get_logk(down, norm, kfactor, stype)
            logkavg, var_name_out = self._compute_asym_syst(
                logkup, logkdown, name, process, channel, symmetrize, add_to_data_covariance,
                **kargs)
        elif mirror:
            syst = self._flat(h, channel)
            if as_difference:
                syst = norm + syst
            logkavg = get_logk(syst, norm, kfactor, stype)
        else:
            raise RuntimeError("Only one histogram given but mirror=False")
        self._book_logk(self.dict_logkavg, logkavg, channel, process, var_name_out)
        self.book_systematic(var_name_out, add_to_data_covariance=add_to_data_covariance, **kargs)

    def book_systematic(self, name, noi=False, constrained=True, add_to_data_covariance=False,
                        groups=None):
        if add_to_data_covariance:
            if noi:
                raise ValueError(f"{name}: an noi can't be added to the data covariance")
            self.systscovariance.add(name)
        elif not constrained:
            self.systsnoconstraint.add(name)
        else:
            self.systsstandard.add(name)
        if noi:
            self.systsnoi.add(name)
        if not add_to_data_covariance:
            for group in (groups if groups is not None else [name]):
                self.dict_systgroups.setdefault(group, set()).add(name)

    def add_beta_variations(self, h, process, source_channel, dest_channel):
        """rabbit's add_beta_variations: a template variation of `process` in the masked
        channel dest_channel, correlated with the Barlow-Beeston beta of (source bin, process);
        write() puts it in hbetavariations[dest rows, source columns, process] (dense only).

        h: array [dest channel's bins..., source channel's bins...], what rabbit takes as
        h.project(*dest_axes, *source_axes).values(flow=dest_flow) and reshapes to
        (*norm.shape, -1), norm = the process's nominal in dest_channel (so the process must
        already be in dest_channel: rabbit raises KeyError otherwise). rabbit applies
        flow=dest_flow to the source axes too: with a flow destination (as `gen` here) and a
        source axis that has flow bins (hist's default), its row is longer than the source
        channel and write() fails on the assignment; the array given here has the source
        channel's bins only (what rabbit gets when the source axes have no flow bins). The
        size check is write()'s numpy assignment, as in rabbit."""
        if self.sparse:
            raise NotImplementedError("Sparse implementation not yet implemented")
        if source_channel not in self.channels:
            raise RuntimeError(f"Channel {source_channel} not known!")
        if dest_channel not in self.channels:
            raise RuntimeError(f"Channel {dest_channel} not known!")
        if not self.channels[dest_channel]["masked"]:
            raise RuntimeError("Beta variations can only be applied to masked channels")
        norm = self.dict_norm[dest_channel][process]
        variation = np.asarray(h, dtype=self.dtype).reshape((*norm.shape, -1))
        self.dict_beta_variations[dest_channel].setdefault(source_channel, {})[process] = \
            variation
        self.has_beta_variations = True

    def add_external_likelihood_term(self, params, grad=None, hess_dense=None, hess_sparse=None,
                                     name=None):
        """params: list of names; grad [n]; hess_dense [n, n]; hess_sparse (rows, cols, values)."""
        if grad is None and hess_dense is None and hess_sparse is None:
            raise ValueError("requires at least one of grad or hess")
        if name is None:
            name = f"ext{len(self.external_terms)}"
        self.external_terms.append({
            "name": name, "params": list(params),
            "grad_values": None if grad is None else np.asarray(grad, dtype=self.dtype),
            "hess_dense": None if hess_dense is None else np.asarray(hess_dense, self.dtype),
            "hess_sparse": hess_sparse})

    # --- bookkeeping as in rabbit ----------------------------------------------------------
    def get_systs(self):
        return natural_sort(self.systsnoconstraint) + natural_sort(self.systsstandard)

    def get_procs(self):
        return sorted(self.signals) + sorted(self.bkgs)

    def get_constraintweights(self):
        systs = self.get_systs()
        cw = np.ones(len(systs), dtype=self.dtype)
        for s in self.systsnoconstraint:
            cw[systs.index(s)] = 0.0
        return cw

    def get_noiidxs(self):
        systs = self.get_systs()
        return [systs.index(n) for n in natural_sort(self.systsnoi)]

    def get_systgroups(self):
        systs = self.get_systs()
        groups, idxs = [], []
        for g in natural_sort(self.dict_systgroups.keys()):
            groups.append(g)
            # rabbit iterates the member *set*; we sort by index for determinism
            idxs.append(sorted(systs.index(s) for s in self.dict_systgroups[g]))
        return groups, idxs

    # --- the arrays -----------------------------------------------------------------------
    def arrays(self):
        """Everything write() puts in the file, as numpy arrays (also used by the reference)."""
        if self.signals & self.bkgs:
            raise RuntimeError("process both signal and background")
        procs = self.get_procs()
        nproc = len(procs)
        nbins = sum(v for c, v in self.nbinschan.items() if not self.channels[c]["masked"])
        nbinsfull = sum(self.nbinschan.values())
        systs = self.get_systs()
        nsyst = len(systs)
        sumw = np.zeros([nbinsfull, nproc])
        sumw2 = np.zeros([nbinsfull, nproc])
        data_obs = np.zeros(nbins)
        data_var = np.zeros(nbins)
        pseudodata = np.zeros([nbins, len(self.pseudodata_names)])
        norm = np.zeros([nbinsfull, nproc])
        logk = np.zeros([nbinsfull, nproc, 2, nsyst])
        betavar = np.zeros([nbinsfull, nbins, nproc]) if self.has_beta_variations else None
        ibin = 0
        for chan, info in self.channels.items():
            nb = self.nbinschan[chan]
            for ip, proc in enumerate(procs):
                if proc not in self.dict_norm[chan]:
                    continue
                sumw[ibin:ibin + nb, ip] = self.dict_norm[chan][proc]
                sumw2[ibin:ibin + nb, ip] = self.dict_sumw2[chan][proc]
                norm[ibin:ibin + nb, ip] = self.dict_norm[chan][proc]
                for isy, syst in enumerate(systs):
                    if syst in self.dict_logkavg[chan][proc]:
                        logk[ibin:ibin + nb, ip, 0, isy] = self.dict_logkavg[chan][proc][syst]
                        if syst in self.dict_logkhalfdiff[chan][proc]:
                            logk[ibin:ibin + nb, ip, 1, isy] = \
                                self.dict_logkhalfdiff[chan][proc][syst]
                if betavar is not None:
                    for src, srcdict in self.dict_beta_variations[chan].items():
                        if proc not in srcdict:
                            continue
                        start = 0
                        for c, n in self.nbinschan.items():
                            if self.channels[c]["masked"]:
                                continue
                            if c == src:
                                break
                            start += n
                        else:
                            raise RuntimeError(f"source channel {src} not found")
                        betavar[ibin:ibin + nb, start:start + self.nbinschan[src], ip] = \
                            srcdict[proc]
            if not info["masked"]:
                data_obs[ibin:ibin + nb] = self.dict_data_obs[chan]
                data_var[ibin:ibin + nb] = self.dict_data_var[chan]
                for k, name in enumerate(self.pseudodata_names):
                    pseudodata[ibin:ibin + nb, k] = self.dict_pseudodata[chan][name]
            ibin += nb

        cov_inv = None
        data_cov = self.data_covariance
        if data_cov is None and (self.systscovariance or self.add_bin_by_bin_stat_to_data_cov):
            data_cov = np.diag(data_var)
        if data_cov is not None:
            data_cov = np.array(data_cov, dtype=self.dtype)
            for syst in natural_sort(self.systscovariance):
                if nbinsfull != nbins:
                    raise RuntimeError("rabbit cannot add systematics to the data covariance "
                                       "with masked channels ([nbinsfull] vector vs [nbins] cov)")
                v = np.zeros([nbinsfull, 1])
                ibin = 0
                for chan in self.channels:
                    nb = self.nbinschan[chan]
                    for proc in procs:
                        if proc in self.dict_norm[chan] and syst in self.dict_logkavg[chan][proc]:
                            v[ibin:ibin + nb, 0] += self.dict_logkavg[chan][proc][syst]
                    ibin += nb
                data_cov += v @ v.T
            full_cov = data_cov
            if self.add_bin_by_bin_stat_to_data_cov:
                full_cov = data_cov + np.diag(sumw2[:nbins].sum(axis=1))  # see module docstring
            cov_inv = np.linalg.inv(full_cov)

        return dict(procs=procs, signals=sorted(self.signals), systs=systs,
                    systsnoconstraint=natural_sort(self.systsnoconstraint),
                    groups=self.get_systgroups(), noiidxs=self.get_noiidxs(),
                    pseudodatanames=list(self.pseudodata_names),
                    constraintweights=self.get_constraintweights(), data_obs=data_obs,
                    data_var=data_var, pseudodata=pseudodata, sumw=sumw, sumw2=sumw2,
                    norm=norm, logk=logk, symmetric=self.symmetric_tensor, betavar=betavar,
                    data_cov_inv=cov_inv, nbins=nbins, nbinsfull=nbinsfull,
                    systematic_type=self.systematic_type,
                    external_terms=self.external_terms)

    def meta_data(self, meta_data_dict):
        """The dict TensorWriter.write() pickles: the user's dict updated in place."""
        if meta_data_dict is not None:
            meta_data_dict.update({
                "channel_info": {c: {"axes": [ax.hist_axis() for ax in info["axes"]],
                                     "masked": info["masked"], "flow": info["flow"]}
                                 for c, info in self.channels.items()},
                "symmetric_tensor": self.symmetric_tensor,
                "systematic_type": self.systematic_type})
            if "meta_info" not in meta_data_dict:
                meta_data_dict["meta_info"] = {}
        return meta_data_dict

    def channel_summary(self):
        """What a reader of the pickled meta must report per channel, from the writer's own
        axis definitions: name, masked, flow, nbins and per axis its name and edges (the bin
        edges; for a flow channel the index edges 0..extent, docs/format.md section 3)."""
        out = []
        for c, info in self.channels.items():
            axes = []
            for ax in info["axes"]:
                if info["flow"]:
                    axes.append({"name": ax.name, "edges": list(range(ax.extent + 1)),
                                 "flow_labels": ax.extent})
                else:
                    axes.append({"name": ax.name, "edges": list(ax.edges)})
            out.append({"name": c, "masked": bool(info["masked"]), "flow": bool(info["flow"]),
                        "nbins": self.nbinschan[c], "axes": axes})
        return out

    def write(self, path, compression="gzip", meta_data_dict=None, meta_compression="blosc"):
        """rabbit's write(meta_data_dict={}): the pickled `meta` group first, then the arrays.
        meta_compression: "blosc" (wums), "gzip" (fallback without the Blosc plugin) or None."""
        a = self.arrays()
        meta = self.meta_data({} if meta_data_dict is None else meta_data_dict)
        procs, systs = a["procs"], a["systs"]
        nproc, nsyst = len(procs), len(systs)
        chunk = max(self.chunk_bytes, nproc * 8, 2 * nsyst * 8)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with h5py.File(path, "w", rdcc_nbytes=chunk) as f:
            pickle_dump_h5py("meta", meta, f, meta_compression)

            def strings(name, content, dtype=h5py.special_dtype(vlen=str)):
                ds = f.create_dataset(f"h{name}", [len(content)], dtype=dtype,
                                      compression="gzip")
                if len(content):
                    ds[...] = content

            strings("procs", procs)
            strings("signals", a["signals"])
            strings("systs", systs)
            strings("systsnoconstraint", a["systsnoconstraint"])
            groups, idxs = a["groups"]
            strings("systgroups", groups)
            vl = h5py.special_dtype(vlen=np.dtype("int32"))
            ds = f.create_dataset("hsystgroupidxs", [len(idxs)], dtype=vl, compression="gzip")
            for i, ix in enumerate(idxs):
                ds[i] = np.array(ix, dtype="int32")
            strings("noiidxs", np.array(a["noiidxs"], dtype="int32"), dtype="int32")
            strings("pseudodatanames", a["pseudodatanames"])

            w = lambda arr, name, grp=f, **kw: write_flat_in_chunks(  # noqa: E731
                arr, grp, name, chunk, compression=compression, **kw)
            w(a["constraintweights"], "hconstraintweights")
            w(a["data_obs"], "hdata_obs")
            if np.any(a["data_var"] != a["data_obs"]):
                w(a["data_var"], "hdata_var")
            w(a["pseudodata"], "hpseudodata")
            if a["data_cov_inv"] is not None:
                w(a["data_cov_inv"], "hdata_cov_inv")
            w(a["sumw"], "hsumw")
            w(a["sumw2"], "hsumw2")
            logk = a["logk"]
            if self.sparse:
                self._write_sparse(f, a, chunk, compression)
            else:
                w(a["norm"], "hnorm")
                w(logk[:, :, 0, :] if a["symmetric"] else logk, "hlogk")
                if a["betavar"] is not None:
                    w(a["betavar"], "hbetavariations")
            if self.external_terms:
                eg = f.create_group("external_terms")
                for t in self.external_terms:
                    tg = eg.create_group(t["name"])
                    ds = tg.create_dataset("params", [len(t["params"])],
                                           dtype=h5py.special_dtype(vlen=str), compression="gzip")
                    ds[...] = [str(p) for p in t["params"]]
                    if t["grad_values"] is not None:
                        w(t["grad_values"], "grad_values", tg)
                    if t["hess_dense"] is not None:
                        w(t["hess_dense"], "hess_dense", tg)
                    elif t["hess_sparse"] is not None:
                        n = len(t["params"])
                        rows, cols, vals = (np.asarray(x) for x in t["hess_sparse"])
                        rows, cols = rows.astype(self.idxdtype), cols.astype(self.idxdtype)
                        order = np.argsort(np.ravel_multi_index((rows, cols), (n, n)))
                        idx = np.stack([rows[order], cols[order]], axis=-1)
                        write_sparse(idx, vals.astype(self.dtype)[order], (n, n), tg,
                                     "hess_sparse", chunk, compression)
        return a

    def _write_sparse(self, f, a, chunk, compression):
        """rabbit's sparse assembly: hnorm_sparse entries are the non-zero nominals; hlogk_sparse
        rows index those entries, columns are isyst (avg) or nsyst + isyst (halfdiff); both sorted
        into canonical row-major order."""
        norm, logk = a["norm"], a["logk"]
        nsyst = len(a["systs"])
        if a["betavar"] is not None:
            raise NotImplementedError("beta variations are dense only")
        nz = np.argwhere(norm != 0.0)  # row-major = canonical order
        norm_idx = nz.astype(self.idxdtype)
        norm_val = norm[nz[:, 0], nz[:, 1]]
        ent, col, val = [], [], []
        planes = [0] if a["symmetric"] else [0, 1]
        for ie, (b, p) in enumerate(nz):
            for plane in planes:
                for s in range(nsyst):
                    v = logk[b, p, plane, s]
                    if v != 0.0:
                        ent.append(ie)
                        col.append(s + plane * nsyst)
                        val.append(v)
        ncols = nsyst if a["symmetric"] else 2 * nsyst
        lidx = np.array([ent, col], dtype=self.idxdtype).T.reshape(-1, 2)
        lval = np.array(val, dtype=self.dtype)
        order = np.argsort(np.ravel_multi_index((lidx[:, 0], lidx[:, 1]), (len(nz), ncols)))
        write_sparse(norm_idx, norm_val, norm.shape, f, "hnorm_sparse", chunk, compression)
        write_sparse(lidx[order], lval[order], (len(nz), ncols), f, "hlogk_sparse", chunk,
                     compression)
