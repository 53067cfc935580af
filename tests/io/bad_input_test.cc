// Bad input: every case is an InputError whose message names the file, the dataset or field, the
// offending value and what was expected. Malformed files are made from valid ones with the HDF5
// C API directly (io_test_util.h).
#include <hdf5.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "io_test_util.h"
#include "lepus/io/internal/hdf5_util.h"  // private io layer: unit-level filter check
#include "lepus/io/reader.h"
#include "test_support.h"

namespace {

using lepus::engine::Model;
using lepus::engine::StorageKind;
using lepus::engine::SystematicType;
using lepus::test::io::Contains;
using lepus::test::io::H5File;
using lepus::test::io::ReadError;
using lepus::test::io::RichModel;
using lepus::test::io::WriteTemp;

Model Base(bool asym = false) { return RichModel(asym, SystematicType::kLogNormal, 21); }

// Asserts that reading fails with a message containing the file and all the parts.
void ExpectError(const std::string& path, const std::vector<std::string>& parts) {
  const std::string err = ReadError(path);
  CAPTURE(err);
  REQUIRE_FALSE(err.empty());
  CHECK(err.rfind(path + ": ", 0) == 0);
  for (const auto& p : parts) {
    CAPTURE(p);
    CHECK(Contains(err, p));
  }
}

}  // namespace

TEST_CASE("bad input: missing file, directory, not HDF5") {
  const std::string missing = lepus::test::TempPath("missing", ".hdf5");
  ExpectError(missing, {"does not exist"});

  const std::string dir = lepus::test::TempPath("dir", "");
  std::filesystem::create_directories(dir);
  ExpectError(dir, {"is a directory"});

  const std::string text = lepus::test::TempPath("text", ".hdf5");
  std::ofstream(text) << "hnorm,hlogk\n1,2\n";
  ExpectError(text, {"not an HDF5 file"});

  const std::string empty = lepus::test::TempPath("empty", ".hdf5");
  std::ofstream{empty};
  ExpectError(empty, {"not an HDF5 file"});
}

TEST_CASE("bad input: missing required datasets") {
  for (const char* name : {"hprocs", "hsignals", "hsysts", "hdata_obs", "hlogk"}) {
    const std::string path = WriteTemp(Base(), "missing-ds");
    H5File(path).Delete(name);
    ExpectError(path, {std::string(name) + ": required dataset is missing"});
  }
  {
    const std::string path = WriteTemp(Base(), "missing-norm");
    H5File(path).Delete("hnorm");
    ExpectError(path, {"hnorm: required dataset is missing", "hnorm_sparse"});
  }
  for (const char* name : {"hnorm_sparse/indices", "hlogk_sparse/values"}) {
    const std::string path = WriteTemp(Base(), "missing-sparse", StorageKind::kSparse);
    H5File(path).Delete(name);
    ExpectError(path, {std::string(name) + ": required dataset is missing"});
  }
  {
    const std::string path = WriteTemp(Base(), "missing-groupidx");
    H5File(path).Delete("hsystgroupidxs");
    ExpectError(path, {"hsystgroupidxs: is missing", "present together"});
  }
}

TEST_CASE("bad input: inconsistent shapes") {
  const Model m = Base(true);
  const auto nbf = m.nbins_full, nb = m.nbins;
  const auto np = m.num_processes(), ns = m.num_systematics();
  {
    // hnorm with one process too few.
    const std::string path = WriteTemp(m, "shape-norm");
    H5File(path).WriteDoubles("hnorm", std::vector<double>(nbf * (np - 1), 1.0), {nbf, np - 1});
    ExpectError(path, {"hnorm: has shape [15, 2]", "[nbinsfull, nproc]", "nproc = 3"});
  }
  {
    const std::string path = WriteTemp(m, "shape-logk");
    H5File(path).WriteDoubles("hlogk", std::vector<double>(nbf * np * 3 * ns, 0.0),
                              {nbf, np, 3, ns});
    ExpectError(path, {"hlogk: has shape [15, 3, 3, 6]", "[15, 3, 6]", "[15, 3, 2, 6]"});
  }
  {
    const std::string path = WriteTemp(m, "shape-sumw2");
    H5File(path).WriteDoubles("hsumw2", std::vector<double>(nb * np, 0.0), {nb, np});
    ExpectError(path, {"hsumw2: has shape [12, 3]", "[nbinsfull, nproc] = [15, 3]"});
  }
  {
    // original_shape disagreeing with the stored element count.
    const std::string path = WriteTemp(m, "shape-orig");
    H5File(path).WriteDoubles("hdata_obs", std::vector<double>(nb, 1.0), {nb + 1});
    ExpectError(path, {"hdata_obs: original_shape is [13] (13 elements)", "has 12 elements"});
  }
  {
    // An original_shape whose product overflows int64 (found by the fit_input fuzz target:
    // signed overflow, undefined behaviour) is a mismatch like any other.
    const std::int64_t big = std::numeric_limits<std::int64_t>::max();
    const std::string path = WriteTemp(m, "shape-orig-overflow");
    H5File(path).WriteDoubles("hdata_obs", std::vector<double>(nb, 1.0), {big, 3, big});
    ExpectError(path, {"hdata_obs: original_shape is [9223372036854775807, 3, 9223372036854775807]",
                       "has 12 elements"});
  }
  {
    // Fewer hnorm rows than data bins.
    const std::string path = WriteTemp(m, "shape-rows");
    {
      H5File f(path);
      f.WriteDoubles("hdata_obs", std::vector<double>(nbf + 2, 1.0), {nbf + 2});
      for (const char* name : {"hdata_var", "hpseudodata", "hpseudodatanames"}) f.Delete(name);
    }
    ExpectError(path, {"hnorm: has 15 rows", "at least nbins = 17"});
  }
  {
    const std::string path = WriteTemp(m, "shape-cw");
    H5File(path).WriteDoubles("hconstraintweights", {1.0, 1.0}, {2});
    ExpectError(path, {"hconstraintweights: has shape [2]", "[nsyst] = [6]"});
  }
  {
    const std::string path = WriteTemp(m, "shape-pseudo");
    H5File(path).WriteStrings("hpseudodatanames", {"one"});
    ExpectError(path, {"hpseudodata: has shape [12, 2]", "[12, 1]"});
  }
  {
    const std::string path = WriteTemp(m, "shape-sparse", StorageKind::kSparse);
    {
      H5File f(path);
      const auto v = f.ReadDoubles("hlogk_sparse/values");
      f.WriteDoubles("hlogk_sparse/values", std::vector<double>(v.begin(), v.end() - 1),
                     {static_cast<std::int64_t>(v.size()) - 1});
    }
    ExpectError(path, {"hlogk_sparse/indices: has shape", "[nnzk, 2]"});
  }
  {
    const std::string path = WriteTemp(m, "groups");
    H5File(path).WriteStrings("hsystgroups", {"a"});
    ExpectError(path, {"hsystgroupidxs: has 3 entries", "hsystgroups has 1"});
  }
}

TEST_CASE("bad input: NaN and Inf are reported with dataset and flat index") {
  const Model m = Base(true);
  const int np = m.num_processes(), ns = m.num_systematics();
  {
    const std::string path = WriteTemp(m, "nan-logk");
    // bin 1, process 2, plane 1 (halfdiff), syst 4
    const std::size_t flat = ((1 * np + 2) * 2 + 1) * ns + 4;
    H5File(path).SetDouble("hlogk", flat, std::nan(""));
    ExpectError(path, {"hlogk[" + std::to_string(flat) + "]", "is nan",
                       "(bin 1, process 2, plane 1, syst 4)", "must be finite"});
  }
  {
    const std::string path = WriteTemp(m, "inf-norm");
    H5File(path).SetDouble("hnorm", 7, std::numeric_limits<double>::infinity());
    ExpectError(path, {"hnorm[7]: is inf, but must be finite"});
  }
  {
    const std::string path = WriteTemp(m, "inf-sparse", StorageKind::kSparse);
    H5File(path).SetDouble("hlogk_sparse/values", 5, -std::numeric_limits<double>::infinity());
    ExpectError(path, {"hlogk_sparse/values[5]: is -inf, but must be finite"});
  }
  {
    const std::string path = WriteTemp(m, "nan-sumw2");
    H5File(path).SetDouble("hsumw2", 3, std::nan(""));
    ExpectError(path, {"hsumw2[3]: is nan, but must be finite"});
  }
  {
    const std::string path = WriteTemp(m, "nan-cw");
    H5File(path).SetDouble("hconstraintweights", 2, std::nan(""));
    ExpectError(path, {"hconstraintweights[2]: is nan"});
  }
}

TEST_CASE("bad input: negative or non-finite data") {
  const Model m = Base();
  {
    const std::string path = WriteTemp(m, "neg-data");
    H5File(path).SetDouble("hdata_obs", 4, -3.5);
    ExpectError(path, {"hdata_obs[4]: is -3.5, but must be >= 0"});
  }
  {
    const std::string path = WriteTemp(m, "nan-data");
    H5File(path).SetDouble("hdata_obs", 0, std::nan(""));
    ExpectError(path, {"hdata_obs[0]: is nan, but must be finite"});
  }
  {
    const std::string path = WriteTemp(m, "neg-pseudo");
    H5File(path).SetDouble("hpseudodata", 3, -1.0);
    ExpectError(path, {"hpseudodata[3]: is -1, but must be >= 0"});
  }
  {
    const std::string path = WriteTemp(m, "neg-sumw2");
    H5File(path).SetDouble("hsumw2", 0, -2.0);
    ExpectError(path, {"hsumw2[0]: is -2, but must be >= 0"});
  }
}

TEST_CASE("bad input: non-positive nominal where log-normal logk is non-zero") {
  const Model m = Base();
  const int np = m.num_processes(), ns = m.num_systematics();
  {
    const std::string path = WriteTemp(m, "neg-nominal");
    H5File(path).SetDouble("hnorm", 3 * np + 0, -5.0);  // bin 3, process sig0
    ExpectError(path, {"hlogk[" + std::to_string((3 * np + 0) * ns), "(bin 3, process \"sig0\"",
                       "nominal yield is -5", "must be 0 where the nominal is not > 0"});
  }
  {
    // Zero nominal with a genuine (non-placeholder) logk.
    const std::string path = WriteTemp(m, "zero-nominal");
    H5File(path).SetDouble("hnorm", 3 * np + 1, 0.0);
    ExpectError(path, {"nominal yield is 0", "placeholder ln(1e-3)"});
  }
  {
    // The placeholder itself at a negative nominal is not accepted either.
    const std::string path = WriteTemp(m, "neg-placeholder");
    {
      H5File f(path);
      f.SetDouble("hnorm", 3 * np + 1, -1.0);
      for (int s = 0; s < ns; ++s) f.SetDouble("hlogk", (3 * np + 1) * ns + s, std::log(1e-3));
    }
    ExpectError(path, {"nominal yield is -1"});
  }
  {
    // Normal (additive) systematics have no such restriction.
    const Model n = RichModel(false, SystematicType::kNormal, 22);
    const std::string path = WriteTemp(n, "normal-zero");
    H5File(path).SetDouble("hnorm", 3 * np + 1, 0.0);
    CHECK(ReadError(path).empty());
  }
}

TEST_CASE("bad input: sparse indices out of range") {
  const Model m = Base(true);
  {
    const std::string path = WriteTemp(m, "sparse-bin", StorageKind::kSparse);
    H5File(path).SetInt("hnorm_sparse/indices", 2 * 3, 99);  // entry 3, bin
    ExpectError(path, {"hnorm_sparse/indices[3, 0]: is 99 (bin)", "[0, 15)"});
  }
  {
    const std::string path = WriteTemp(m, "sparse-proc", StorageKind::kSparse);
    H5File(path).SetInt("hnorm_sparse/indices", 2 * 4 + 1, -1);
    ExpectError(path, {"hnorm_sparse/indices[4, 1]: is -1 (process)", "[0, 3)"});
  }
  {
    const std::string path = WriteTemp(m, "sparse-row", StorageKind::kSparse);
    H5File(path).SetInt("hlogk_sparse/indices", 2 * 10, 100000);
    ExpectError(path, {"hlogk_sparse/indices[10, 0]: is 100000 (row into hnorm_sparse)"});
  }
  {
    const std::string path = WriteTemp(m, "sparse-col", StorageKind::kSparse);
    H5File(path).SetInt("hlogk_sparse/indices", 2 * 10 + 1, 12);
    ExpectError(path, {"hlogk_sparse/indices[10, 1]: is 12 (systematic column)", "[0, 12)"});
  }
  {
    const std::string path = WriteTemp(m, "sparse-dup", StorageKind::kSparse);
    {
      H5File f(path);
      const auto idx = f.ReadInts("hnorm_sparse/indices");
      f.SetInt("hnorm_sparse/indices", 2, idx[0]);
      f.SetInt("hnorm_sparse/indices", 3, idx[1]);
    }
    ExpectError(path, {"hnorm_sparse/indices: entries 0 and 1", "must be unique"});
  }
  {
    const std::string path = WriteTemp(m, "sparse-shape", StorageKind::kSparse);
    {
      H5File f(path);
      f.DeleteAttribute("hlogk_sparse", "dense_shape");
      hsize_t two = 2;
      const std::int64_t v[2] = {3, 6};
      hid_t g = H5Gopen2(f.id(), "hlogk_sparse", H5P_DEFAULT);
      hid_t s = H5Screate_simple(1, &two, nullptr);
      hid_t a = H5Acreate2(g, "dense_shape", H5T_STD_I64LE, s, H5P_DEFAULT, H5P_DEFAULT);
      H5Awrite(a, H5T_NATIVE_INT64, v);
      H5Aclose(a);
      H5Sclose(s);
      H5Gclose(g);
    }
    ExpectError(path, {"hlogk_sparse: attribute dense_shape: is [3, 6]", "[nnz, 2*nsyst]"});
  }
}

TEST_CASE("bad input: index lists out of range") {
  const Model m = Base();
  {
    const std::string path = WriteTemp(m, "noi");
    H5File(path).WriteNumeric("hnoiidxs", H5T_STD_I32LE, H5T_NATIVE_INT32,
                              std::vector<std::int32_t>{0, 6}.data(), {2});
    ExpectError(path, {"hnoiidxs[1]: is 6, but must be in [0, 6)"});
  }
  {
    const std::string path = WriteTemp(m, "groupidx");
    {
      H5File f(path);
      f.Delete("hsystgroupidxs");
      hid_t ft = H5Tvlen_create(H5T_STD_I32LE), mt = H5Tvlen_create(H5T_NATIVE_INT);
      int a[2] = {0, 1}, b[1] = {9};
      hvl_t buf[2] = {{2, a}, {1, b}};
      hsize_t n = 2;
      hid_t s = H5Screate_simple(1, &n, nullptr);
      hid_t d = H5Dcreate2(f.id(), "hsystgroupidxs", ft, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      H5Dwrite(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
      H5Dclose(d);
      H5Sclose(s);
      H5Tclose(ft);
      H5Tclose(mt);
      f.WriteStrings("hsystgroups", {"g0", "g1"});
    }
    ExpectError(path, {"hsystgroupidxs[1][0]: is 9 (group \"g1\")", "[0, 6)"});
  }
  {
    const std::string path = WriteTemp(m, "cw-neg");
    H5File(path).SetDouble("hconstraintweights", 1, -1.0);
    ExpectError(path, {"hconstraintweights[1]: is -1, but must be >= 0"});
  }
  {
    const std::string path = WriteTemp(m, "noconstraint-unknown");
    H5File(path).WriteStrings("hsystsnoconstraint", {"nosuch"});
    ExpectError(path, {"hsystsnoconstraint[0]: is \"nosuch\", but must be one of hsysts"});
  }
}

TEST_CASE("bad input: signals must be a prefix of hprocs") {
  const Model m = Base();  // processes sig0, sig1, bkg2
  const std::string path = WriteTemp(m, "signals");
  H5File(path).WriteStrings("hsignals", {"sig0", "bkg2"});
  ExpectError(path, {"hsignals[1]: is \"bkg2\", but must be \"sig1\"", "first entries of hprocs"});

  const std::string too_many = WriteTemp(m, "signals-many");
  H5File(too_many).WriteStrings("hsignals", {"sig0", "sig1", "bkg2", "x"});
  ExpectError(too_many, {"hsignals: has 4 entries, but hprocs has only 3"});

  const std::string dup = WriteTemp(m, "procs-dup");
  H5File(dup).WriteStrings("hprocs", {"sig0", "sig1", "sig0"});
  ExpectError(dup, {"hprocs[2]: is \"sig0\", but names must be unique"});
}

TEST_CASE("bad input: wrong types") {
  const Model m = Base();
  {
    const std::string path = WriteTemp(m, "type-strings");
    H5File(path).WriteDoubles("hprocs", {1.0, 2.0, 3.0}, {3});
    ExpectError(path, {"hprocs: has HDF5 type class float, but must be string"});
  }
  {
    const std::string path = WriteTemp(m, "type-numeric");
    H5File(path).WriteStrings("hdata_obs", {"1", "2"});
    ExpectError(path, {"hdata_obs: has HDF5 type class string, but must be numeric"});
  }
  {
    const std::string path = WriteTemp(m, "type-index");
    H5File(path).WriteDoubles("hnoiidxs", {0.5}, {1});
    ExpectError(path, {"hnoiidxs[0]: is 0.5, but must be an integer"});
  }
}

TEST_CASE("bad input: unavailable compression filter names the filter id") {
  // Blosc (32001) is not built into HDF5 and no plugin is installed here; HDF5 lets us create
  // a dataset with it as an optional filter (chunks are then stored unfiltered), which is
  // enough to put the id in the dataset's pipeline.
  const Model m = Base();
  const std::string path = WriteTemp(m, "blosc");
  {
    H5File f(path);
    const auto values = f.ReadDoubles("hsumw2");
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    const hsize_t chunk = values.size();
    H5Pset_chunk(dcpl, 1, &chunk);
    const unsigned cd[7] = {2, 2, 8, 0, 4, 1, 0};
    REQUIRE(H5Pset_filter(dcpl, 32001, H5Z_FLAG_OPTIONAL, 7, cd) >= 0);
    f.WriteNumeric("hsumw2", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, values.data(), {values.size()},
                   {m.nbins_full, m.num_processes()}, dcpl);
    H5Pclose(dcpl);
  }
  if (H5Zfilter_avail(32001) > 0) {
    MESSAGE(
        "a blosc plugin is installed: the unavailable-filter path is tested at unit level only");
  } else {
    ExpectError(
        path, {"hsumw2: compression filter id 32001 (blosc)", "not available", "HDF5_PLUGIN_PATH"});
  }
  // Unit level, for an id no plugin will ever provide.
  try {
    lepus::io::h5::CheckFilterAvailable("f.hdf5", "hlogk", 32999, "");
    FAIL("expected InputError");
  } catch (const lepus::io::InputError& e) {
    CHECK(std::string(e.what()) ==
          "f.hdf5: hlogk: compression filter id 32999 (unregistered filter) is not available in "
          "this HDF5 installation, but is needed to read the dataset; install the HDF5 filter "
          "plugin and point HDF5_PLUGIN_PATH at it, or rewrite the file with gzip or no "
          "compression");
  }
  CHECK_NOTHROW(lepus::io::h5::CheckFilterAvailable("f.hdf5", "hlogk", H5Z_FILTER_DEFLATE, ""));
}

TEST_CASE("bad input: meta_json") {
  const Model m = Base();
  auto with_meta = [&](const std::string& text) {
    const std::string path = WriteTemp(m, "meta");
    H5File(path).SetMetaJson(text);
    return path;
  };
  ExpectError(with_meta("{not json"), {"meta_json: is not valid JSON"});
  ExpectError(
      with_meta(R"({"lepus_meta_version": 2, "systematic_type": "log_normal", "channels": []})"),
      {"meta_json: lepus_meta_version is 2", "reads version 1 only", "upgrade lepus"});
  ExpectError(with_meta(R"({"systematic_type": "log_normal", "channels": []})"),
              {"meta_json: lepus_meta_version is missing"});
  ExpectError(with_meta(R"({"lepus_meta_version": "1", "systematic_type": "log_normal"})"),
              {"meta_json: lepus_meta_version is \"1\" (string), but must be an integer"});
  ExpectError(
      with_meta(R"({"lepus_meta_version": 1, "systematic_type": "lognormalish", "channels": []})"),
      {"meta_json: systematic_type is \"lognormalish\"", "\"log_normal\" or \"normal\""});
  ExpectError(with_meta(R"({"lepus_meta_version": 1, "systematic_type": "normal",
                            "channels": [{"name": "a", "masked": false}]})"),
              {"meta_json: channels[0].nbins is missing"});
  ExpectError(with_meta(R"({"lepus_meta_version": 1, "systematic_type": "normal",
                            "channels": [{"name": "a", "masked": "no", "nbins": 12}]})"),
              {"meta_json: channels[0].masked is \"no\" (string), but must be true or false"});
  ExpectError(with_meta(R"({"lepus_meta_version": 1, "systematic_type": "normal",
                            "channels": [{"name": "a", "masked": false, "nbins": 10},
                                         {"name": "m", "masked": true, "nbins": 3}]})"),
              {"meta_json: channels: have 10 unmasked bins in total, but hdata_obs has 12"});
  ExpectError(with_meta(R"({"lepus_meta_version": 1, "systematic_type": "normal",
                            "channels": [{"name": "m", "masked": true, "nbins": 3},
                                         {"name": "a", "masked": false, "nbins": 12}]})"),
              {"meta_json: channels[1]", "masked channels must come last"});
  ExpectError(with_meta(R"({"lepus_meta_version": 1, "systematic_type": "normal",
                            "channels": [{"name": "a", "masked": false, "nbins": 12,
                                          "axes": [{"name": "x", "edges": [0, 2, 1]}]}]})"),
              {"meta_json: channels[0].axes[0].edges[2] is 1, but must be > the previous edge 2"});
  ExpectError(with_meta(R"({"lepus_meta_version": 1, "systematic_type": "normal",
                            "channels": [{"name": "a", "masked": false, "nbins": 12},
                                         {"name": "m", "masked": true, "nbins": 3}],
                            "systematics": [{"name": "syst0"}]})"),
              {"meta_json: systematics has 1 entries, but hsysts has 6"});
  // Found by the meta_json fuzz target (tests/fuzz): a number beyond double's range was an
  // uncaught nlohmann out_of_range, and nbins near 2^63 overflowed the channel totals.
  ExpectError(with_meta(R"({"lepus_meta_version": 1, "systematic_type": "normal",
                            "channels": [{"name": "a", "masked": false, "nbins": 12,
                                          "axes": [{"name": "x", "edges": [0, 1e400]}]}]})"),
              {"meta_json: is not valid JSON", "number overflow parsing '1e400'"});
  ExpectError(with_meta(R"({"lepus_meta_version": 1, "systematic_type": "normal",
                            "channels": [{"name": "a", "masked": false, "nbins": 12},
                                         {"name": "b", "masked": false,
                                          "nbins": 9223372036854775807}]})"),
              {"meta_json: channels[1].nbins: is 9223372036854775807, but the tensor has 15 bins "
               "(hnorm rows), 12 of them in the channels before it"});
}

TEST_CASE("bad input: a dataspace declaring more elements than fit in memory") {
  // Found by the fit_input fuzz target: a corrupt dataspace made the reader allocate its buffer
  // and die of std::bad_alloc. A chunked dataset with nothing written declares 2^50 elements in
  // a few bytes of file.
  const hsize_t huge = hsize_t{1} << 50, chunk = 1024;
  auto replace = [&](const std::string& name, hid_t type) {
    const std::string path = WriteTemp(Base(), "huge");
    H5File f(path);
    f.Delete(name);
    const hid_t space = H5Screate_simple(1, &huge, nullptr);
    const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 1, &chunk);
    const hid_t d = H5Dcreate2(f.id(), name.c_str(), type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    REQUIRE(d >= 0);
    H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(space);
    return path;
  };
  ExpectError(replace("hdata_obs", H5T_IEEE_F64LE),
              {"hdata_obs: reading 1125899906842624 values needs",
               "of memory are available (MemAvailable)"});
  const hid_t vlen = H5Tcopy(H5T_C_S1);
  H5Tset_size(vlen, H5T_VARIABLE);
  ExpectError(replace("hsysts", vlen), {"hsysts: reading 1125899906842624 strings needs"});
  H5Tclose(vlen);
}

TEST_CASE("bad input: declared sizes are checked against the available memory before allocation") {
  {
    // A dataset of 2^50 float64 (8 PiB) in a file of a few kB: chunked, nothing written.
    const std::string path = WriteTemp(Base(), "huge-dims");
    H5File(path).WriteUnallocated("hdata_obs", {hsize_t{1} << 50});
    ExpectError(path, {"hdata_obs: reading 1125899906842624 values needs 9007199254740992 bytes",
                       "of memory are available (MemAvailable)"});
  }
  {
    // Sparse dense_shape declaring 2^40 bins (no hsumw2: the model would allocate it as zeros).
    const std::string path = WriteTemp(Base(), "huge-dense-shape", StorageKind::kSparse);
    {
      H5File f(path);
      f.Delete("hsumw2");
      f.SetInt64Attribute("hnorm_sparse", "dense_shape", {std::int64_t{1} << 40, 3});
    }
    ExpectError(path, {"hnorm_sparse: attribute dense_shape [1099511627776, 3]: allocating the "
                       "dense [nbinsfull, nproc] arrays of the model needs",
                       "of memory are available (MemAvailable)"});
  }
  {
    // original_shape whose product wraps to 0 in 64 bits (2^32 x 2^32) on an empty dataset.
    const std::string path = WriteTemp(Base(), "orig-overflow");
    H5File(path).WriteDoubles("hnorm", {}, {std::int64_t{1} << 32, std::int64_t{1} << 32});
    ExpectError(path, {"hnorm: original_shape is [4294967296, 4294967296], whose product "
                       "overflows 64 bits, but the dataset has 0 elements"});
  }
  {
    // A channel declaring more bins than the file has, and axes whose bin product overflows.
    const Model m = Base();
    const std::string path = WriteTemp(m, "meta-nbins");
    H5File(path).SetMetaJson(R"({"lepus_meta_version": 1, "systematic_type": "log_normal",
        "channels": [{"name": "a", "masked": false, "nbins": 9223372036854775807},
                     {"name": "m", "masked": true, "nbins": 3}]})");
    ExpectError(path, {"meta_json: channels[0].nbins: is 9223372036854775807, but the tensor has "
                       "15 bins (hnorm rows)"});
    std::string axes;
    for (int a = 0; a < 10; ++a) {
      std::string edges;
      for (int e = 0; e < 100; ++e) {
        if (e > 0) edges += ',';
        edges += std::to_string(e);
      }
      axes += std::string(a ? "," : "") + R"({"name": "x)" + std::to_string(a) +
              R"(", "edges": [)" + edges + "]}";
    }
    const std::string path2 = WriteTemp(m, "meta-axes-overflow");
    H5File(path2).SetMetaJson(R"({"lepus_meta_version": 1, "systematic_type": "log_normal",
        "channels": [{"name": "a", "masked": false, "nbins": 12, "axes": [)" +
                              axes + R"(]},
                     {"name": "m", "masked": true, "nbins": 3}]})");
    ExpectError(path2, {"meta_json: channels[0].nbins: is 12, but the axes' edges give more than "
                        "2^63 bins"});
  }
}

TEST_CASE("bad input: the memory check helpers") {
  namespace h5 = lepus::io::h5;
  std::int64_t p = 0;
  CHECK(h5::CheckedMultiply(3, 4, &p));
  CHECK(p == 12);
  CHECK_FALSE(h5::CheckedMultiply(std::int64_t{1} << 32, std::int64_t{1} << 31, &p));
  CHECK_FALSE(h5::CheckedMultiply(-1, 4, &p));
  CHECK(h5::ShapeSize({std::int64_t{1} << 32, std::int64_t{1} << 32}) == -1);
  CHECK(h5::ShapeSize({2, 3, 4}) == 24);
  CHECK(h5::AvailableMemoryBytes() > 0);  // Linux: /proc/meminfo
  CHECK_NOTHROW(h5::CheckAllocation("f.h5", "d", 1000, 8, "x"));
  CHECK_THROWS_WITH_AS(h5::CheckAllocation("f.h5", "d", std::int64_t{1} << 62, 8, "reading"),
                       doctest::Contains("f.h5: d: reading needs 4611686018427387904 x 8 bytes, "
                                         "more than 2^63 bytes"),
                       lepus::io::InputError);
}

TEST_CASE("bad input: names must be valid UTF-8") {
  namespace h5 = lepus::io::h5;
  std::size_t at = 0;
  CHECK(h5::IsValidUtf8(
      "syst_\xce\xbc_\xe6\x97\xa5\xf0\x9f\x98\x80"));  // mu, a CJK ideograph, an emoji
  CHECK_FALSE(h5::IsValidUtf8("ab\xff", &at));
  CHECK(at == 2);
  CHECK_FALSE(h5::IsValidUtf8("\xc0\xaf", &at));  // overlong '/'
  CHECK(at == 0);
  CHECK_FALSE(h5::IsValidUtf8("x\xed\xa0\x80", &at));  // UTF-16 surrogate
  CHECK(at == 2);
  CHECK_FALSE(h5::IsValidUtf8("\xe2\x82", &at));          // truncated
  CHECK_FALSE(h5::IsValidUtf8("\xf4\x90\x80\x80", &at));  // above U+10FFFF
  CHECK(h5::EscapeBytes("a\xff\\") == "a\\xff\\x5c");

  const Model m = Base();
  struct Case {
    const char* dataset;
    std::vector<std::string> names;
  };
  const std::vector<Case> cases = {
      {"hprocs", {m.processes[0], "bkg\xff", m.processes[2]}},
      {"hsysts",
       {m.systematics[0], "s\xc0\xaf", m.systematics[2], m.systematics[3], m.systematics[4],
        m.systematics[5]}},
      {"hsystgroups", {"theory", "exp\xed\xa0\x80", "empty"}},
      {"hpseudodatanames", {"asimov", "dbl\xe2\x82"}},
      {"hsystsnoconstraint", {m.systematics[0], "\xfe"}},
  };
  for (const auto& c : cases) {
    CAPTURE(c.dataset);
    const std::string path = WriteTemp(m, "utf8");
    H5File(path).WriteStrings(c.dataset, c.names);
    ExpectError(path, {std::string(c.dataset) + "[1]: is \"", "which is not valid UTF-8 (byte",
                       "but names must be UTF-8 text"});
  }
  {
    const std::string path = WriteTemp(m, "utf8-bytes");
    H5File(path).WriteStrings("hprocs", {m.processes[0], "bkg\xff", m.processes[2]});
    ExpectError(path, {"hprocs[1]: is \"bkg\\xff\", which is not valid UTF-8 (byte 3)"});
  }
  {
    // meta_json names: nlohmann's parser rejects ill-formed UTF-8 inside JSON strings.
    const std::string path = WriteTemp(m, "utf8-meta");
    H5File(path).SetMetaJson(
        "{\"lepus_meta_version\": 1, \"systematic_type\": \"log_normal\", "
        "\"channels\": [{\"name\": \"a\xff\", \"masked\": false, \"nbins\": 12}]}");
    ExpectError(path, {"meta_json: is not valid JSON"});
  }
  {
    // Valid multi-byte names read back unchanged.
    Model u = Base();
    u.processes[2] = "bkg_\xce\xbc\xce\xbc";
    u.groups[0].name = "th\xc3\xa9orie";
    const std::string path = WriteTemp(u, "utf8-ok");
    CHECK(ReadError(path).empty());
    CHECK(lepus::io::ReadFitInput(path).processes[2] == u.processes[2]);
  }
}

TEST_CASE("bad input: duplicate group and pseudo-data names") {
  {
    const std::string path = WriteTemp(Base(), "dup-group");
    H5File(path).WriteStrings("hsystgroups", {"theory", "empty", "theory"});
    ExpectError(path,
                {"hsystgroups[2]: is \"theory\", but names must be unique (also at index 0)"});
  }
  {
    const std::string path = WriteTemp(Base(), "dup-pseudo");
    H5File(path).WriteStrings("hpseudodatanames", {"asimov", "asimov"});
    ExpectError(path,
                {"hpseudodatanames[1]: is \"asimov\", but names must be unique (also at index 0)"});
  }
}

TEST_CASE("bad input: writer refuses invalid models and leaves nothing behind") {
  Model m = Base();
  m.data_obs[2] = -1.0;
  const std::string path = lepus::test::TempPath("invalid", ".hdf5");
  try {
    lepus::io::WriteFitInput(m, path);
    FAIL("expected InputError");
  } catch (const lepus::io::InputError& e) {
    CHECK(Contains(e.what(), path + ": cannot write an invalid model: data_obs[2] is -1"));
  }
  CHECK_FALSE(std::filesystem::exists(path));

  const std::string nodir = lepus::test::TempPath("nodir", "") + "/sub/out.hdf5";
  try {
    lepus::io::WriteFitInput(Base(), nodir);
    FAIL("expected InputError");
  } catch (const lepus::io::InputError& e) {
    CHECK(Contains(e.what(), nodir + ": cannot create the file"));
  }
}
