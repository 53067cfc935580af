// Writes small rabbit-layout fit inputs, the same arrays once per HDF5 compression filter, with
// h5wasm and h5wasm-plugins: HDF5 and the real filter plugins (c-blosc2, c-blosc, zstd, lz4,
// bitshuffle, lzf, bzip2) compiled to WebAssembly. This encoder is independent of lepus's
// in-process decoders (io/src/filters), so the files test them against the reference
// implementations. Run by ctest (fixture rabbit_filters_files, tests/cli/CMakeLists.txt):
//   node make_fixtures.mjs <output directory>
// Output: plain.hdf5 (uncompressed, contiguous), one file per filter variant, and
// MANIFEST.txt (file name, filter id, description).
//
// Layout as rabbit's h5pyutils_write.py writes it: numeric arrays flattened to 1-D with an
// int64 attribute original_shape, chunked 1-D; chunks that are entirely zero are never written
// (rabbit skips them, so they read as the fill value 0). String lists are variable-length
// UTF-8 (h5wasm cannot compress variable-length data). hsystgroups / hsystgroupidxs are left
// out: h5wasm cannot write variable-length integer sequences (both are optional for lepus).

import * as h5wasm from "h5wasm/node";
import { install_local_plugins } from "h5wasm-plugins";
import fs from "node:fs";
import path from "node:path";

const outdir = process.argv[2];
if (!outdir) {
  console.error("usage: node make_fixtures.mjs <output directory>");
  process.exit(2);
}
fs.mkdirSync(outdir, { recursive: true });

const Module = await h5wasm.ready;
install_local_plugins(Module);

// ---- the model: deterministic pseudo-random arrays -------------------------------------------
function mulberry32(seed) {
  return function () {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rnd = mulberry32(20240518);

const nbins = 600, nproc = 3, nsyst = 5;
const procs = ["sig", "bkg_a", "bkg_b"];
const systs = ["lumi", "eff", "scale", "shape", "free_norm"];
const hnorm = new Float64Array(nbins * nproc);
const hsumw2 = new Float64Array(nbins * nproc);
const hlogk = new Float64Array(nbins * nproc * nsyst);
const hdata = new Float64Array(nbins);
const hpseudo = new Float64Array(nbins);
for (let b = 0; b < nbins; ++b) {
  const x = b / nbins;
  const yields = [
    200 * Math.exp(-0.5 * ((x - 0.4) / 0.08) ** 2) + 1,
    500 * Math.exp(-3 * x) + 5,
    80 + 40 * x,
  ];
  let total = 0;
  for (let p = 0; p < nproc; ++p) {
    const v = yields[p] * (1 + 0.05 * (rnd() - 0.5));
    hnorm[b * nproc + p] = v;
    hsumw2[b * nproc + p] = v * (0.001 + 0.002 * rnd());
    total += v;
    for (let s = 0; s < nsyst; ++s) {
      // Bins 200..399 carry no systematic effect at all: whole hlogk chunks are zero there.
      let k = 0;
      if (b < 200 || b >= 400) {
        if (s === 0) k = Math.log(1.025);
        else if (s === 1) k = 0.02 * (1 + p) * (rnd() - 0.3);
        else if (s === 2) k = p === 0 ? 0.03 * (x - 0.4) : 0;
        else if (s === 3) k = p === 1 ? 0.05 * Math.sin(6 * x) : 0;
        else k = p === 2 ? Math.log(1.1) : 0;
      }
      hlogk[(b * nproc + p) * nsyst + s] = k;
    }
  }
  hdata[b] = Math.round(total + Math.sqrt(total) * 2 * (rnd() - 0.5));
  hpseudo[b] = Math.round(total * 1.01);
}
// Values on a grid of 1/1024 (like histograms of weighted counts): the low mantissa bits are
// zero, so every codec compresses them (incompressible chunks make some filters fail).
const q = (v) => Math.round(v * 1024) / 1024;
for (const a of [hnorm, hsumw2, hlogk]) for (let i = 0; i < a.length; ++i) a[i] = q(a[i]);
const hconstraintweights = new Float64Array([1, 1, 1, 1, 0]);
const hnoiidxs = new Int32Array([2]);

// ---- writing -----------------------------------------------------------------------------------
const CHUNK = 1000;  // elements per 1-D chunk: hlogk has 9 chunks, 3 of them all zero

function writeNumeric(f, name, data, shape, filter) {
  const n = data.length;
  const dtype = data instanceof Int32Array ? "<i" : "<d";
  // Blosc (1) and LZF fail on chunks they cannot shrink (a handful of values), and h5wasm
  // sets filters as mandatory: tiny arrays stay uncompressed with them.
  if (!filter || (filter.min_elements && n < filter.min_elements)) {
    f.create_dataset({ name, data, shape: [n], dtype });
  } else {
    const chunk = Math.min(n, CHUNK);
    // Created empty, extended, then written chunk by chunk, skipping all-zero chunks.
    const ctor = data.constructor;
    f.create_dataset({
      name, data: new ctor(0), shape: [0], maxshape: [n], dtype, chunks: [chunk],
      compression: filter.id, compression_opts: filter.opts,
    });
    const ds = f.get(name);
    ds.resize([n]);
    for (let start = 0; start < n; start += chunk) {
      const end = Math.min(n, start + chunk);
      const part = data.slice(start, end);  // a copy: h5wasm ignores a view's byteOffset
      if (part.every((v) => v === 0)) continue;
      ds.write_slice([[start, end]], part);
    }
  }
  f.get(name).create_attribute("original_shape", new BigInt64Array(shape.map(BigInt)), [shape.length], "<q");
}

function writeFile(file, filter) {
  const f = new h5wasm.File(path.join(outdir, file), "w");
  f.create_dataset({ name: "hprocs", data: procs });
  f.create_dataset({ name: "hsignals", data: ["sig"] });
  f.create_dataset({ name: "hsysts", data: systs });
  f.create_dataset({ name: "hsystsnoconstraint", data: ["free_norm"] });
  f.create_dataset({ name: "hpseudodatanames", data: ["shifted"] });
  writeNumeric(f, "hconstraintweights", hconstraintweights, [nsyst], filter);
  writeNumeric(f, "hnoiidxs", hnoiidxs, [1], filter);
  writeNumeric(f, "hdata_obs", hdata, [nbins], filter);
  writeNumeric(f, "hpseudodata", hpseudo, [nbins, 1], filter);
  writeNumeric(f, "hnorm", hnorm, [nbins, nproc], filter);
  writeNumeric(f, "hsumw", hnorm, [nbins, nproc], filter);
  writeNumeric(f, "hsumw2", hsumw2, [nbins, nproc], filter);
  writeNumeric(f, "hlogk", hlogk, [nbins, nproc, nsyst], filter);
  f.close();
}

// ---- the variants ------------------------------------------------------------------------------
// Blosc2 (32026), as hdf5plugin.Blosc2: cd_values [0, 0, 0, 0, clevel, filter, codec], with
// filter 0 none / 1 byte shuffle / 2 bitshuffle and codec 0 blosclz, 1 lz4, 2 lz4hc, 4 zlib,
// 5 zstd; the plugin's set_local fills in the type and chunk sizes. rabbit: lz4, 5, shuffle.
// (h5wasm-plugins 0.2.1's c-blosc2 is built without zlib: "undefined symbol compress2".)
const variants = [];
const codecs = { blosclz: 0, lz4: 1, lz4hc: 2, zstd: 5 };
const shuffles = { noshuffle: 0, shuffle: 1, bitshuffle: 2 };
for (const [cname, code] of Object.entries(codecs)) {
  for (const [sname, s] of Object.entries(shuffles)) {
    variants.push({ file: `blosc2_${cname}_${sname}.hdf5`, id: 32026, opts: [0, 0, 0, 0, 5, s, code],
                    what: `Blosc2 ${cname} clevel 5 ${sname}` });
  }
}
variants.push({ file: "blosc2_lz4_shuffle_clevel9.hdf5", id: 32026, opts: [0, 0, 0, 0, 9, 1, 1],
                what: "Blosc2 lz4 clevel 9 shuffle" });
variants.push({ file: "blosc2_lz4_shuffle_clevel0.hdf5", id: 32026, opts: [0, 0, 0, 0, 0, 1, 1],
                what: "Blosc2 clevel 0 (memcpyed chunks)" });
// Blosc (32001): same cd_values convention, codec 0 blosclz, 1 lz4, 4 zlib, 5 zstd.
variants.push({ file: "blosc_lz4_shuffle.hdf5", id: 32001, opts: [0, 0, 0, 0, 5, 1, 1], min_elements: 64, what: "Blosc lz4 shuffle" });
variants.push({ file: "blosc_blosclz_bitshuffle.hdf5", id: 32001, opts: [0, 0, 0, 0, 5, 2, 0], min_elements: 64, what: "Blosc blosclz bitshuffle" });
variants.push({ file: "blosc_zstd_noshuffle.hdf5", id: 32001, opts: [0, 0, 0, 0, 5, 0, 5], min_elements: 64, what: "Blosc zstd noshuffle" });
variants.push({ file: "lz4.hdf5", id: 32004, opts: [0], what: "LZ4 (default block size)" });
variants.push({ file: "zstd_3.hdf5", id: 32015, opts: [3], what: "Zstd level 3" });
variants.push({ file: "zstd_19.hdf5", id: 32015, opts: [19], what: "Zstd level 19" });
// Bitshuffle (32008): user cd_values [block size (0 = default), compression (0 none, 2 lz4, 3 zstd)].
variants.push({ file: "bitshuffle_lz4.hdf5", id: 32008, opts: [0, 2], what: "Bitshuffle + LZ4" });
variants.push({ file: "bitshuffle_zstd.hdf5", id: 32008, opts: [0, 3], what: "Bitshuffle + Zstd" });
variants.push({ file: "bitshuffle_none.hdf5", id: 32008, opts: [0, 0], what: "Bitshuffle, no compression" });
variants.push({ file: "bitshuffle_lz4_block256.hdf5", id: 32008, opts: [256, 2], what: "Bitshuffle + LZ4, 256-element blocks" });
variants.push({ file: "lzf.hdf5", id: 32000, opts: [], min_elements: 64, what: "LZF" });
variants.push({ file: "bzip2.hdf5", id: 307, opts: [9], what: "BZip2 level 9" });
variants.push({ file: "gzip.hdf5", id: 1, opts: [4], what: "gzip level 4" });

const arrays = { hconstraintweights, hnoiidxs, hdata_obs: hdata, hpseudodata: hpseudo, hnorm,
                 hsumw: hnorm, hsumw2, hlogk };
function fail(file, what) {
  console.error(`make_fixtures: ${file}: ${what}`);
  process.exit(1);
}

writeFile("plain.hdf5", null);
const manifest = ["plain.hdf5\t0\tuncompressed"];
for (const v of variants) {
  writeFile(v.file, { id: v.id, opts: v.opts, min_elements: v.min_elements });
  // Check that the filter really is in the pipeline (a missing plugin must not silently give
  // an uncompressed file) and that the encoder's own reader gives the arrays back (a failed
  // chunk write is only printed by HDF5, not thrown).
  const f = new h5wasm.File(path.join(outdir, v.file), "r");
  for (const [name, want] of Object.entries(arrays)) {
    const ds = f.get(name);
    if (!(v.min_elements && want.length < v.min_elements) && !ds.filters.some((x) => x.id === v.id)) fail(v.file, `${name}: filter ${v.id} missing from the pipeline: ${JSON.stringify(ds.filters)}`);
    const got = ds.value;
    if (got.length !== want.length || got.some((x, i) => x !== want[i]))
      fail(v.file, `${name}: the encoder's reader does not give the written values back ` +
                   `(index ${got.findIndex((x, i) => x !== want[i])})`);
  }
  f.close();
  manifest.push(`${v.file}\t${v.id}\t${v.what}`);
}
fs.writeFileSync(path.join(outdir, "MANIFEST.txt"), manifest.join("\n") + "\n");
console.log(`make_fixtures: wrote ${manifest.length} files to ${outdir}`);
