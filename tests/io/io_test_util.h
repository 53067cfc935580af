// Helpers for the io tests: field-by-field model comparison and small HDF5 C-API edits used to
// make malformed files from valid ones (the io library's own HDF5 layer is deliberately not used
// here, so the tests exercise files made independently of it).
#pragma once

#include <hdf5.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "lepus/engine/model.h"
#include "lepus/io/errors.h"
#include "lepus/io/reader.h"
#include "lepus/io/writer.h"
#include "lepus/models/synthetic.h"
#include "test_support.h"

namespace lepus::test::io {

// Exact comparison of every field (files store float64, so a round trip is bit-exact).
inline void ExpectSameModel(const engine::Model& a, const engine::Model& b,
                            bool compare_storage = true) {
  CHECK(a.processes == b.processes);
  CHECK(a.num_signals == b.num_signals);
  CHECK(a.systematics == b.systematics);
  CHECK(a.constraint_weights == b.constraint_weights);
  CHECK(a.noi_indices == b.noi_indices);
  CHECK(a.systematic_scales == b.systematic_scales);
  CHECK(a.systematic_units == b.systematic_units);
  REQUIRE(a.groups.size() == b.groups.size());
  for (std::size_t g = 0; g < a.groups.size(); ++g) {
    CHECK(a.groups[g].name == b.groups[g].name);
    CHECK(a.groups[g].members == b.groups[g].members);
  }
  CHECK(a.systematic_type == b.systematic_type);
  CHECK(a.asymmetric == b.asymmetric);
  if (compare_storage) CHECK(a.storage == b.storage);
  REQUIRE(a.channels.size() == b.channels.size());
  for (std::size_t c = 0; c < a.channels.size(); ++c) {
    CHECK(a.channels[c].name == b.channels[c].name);
    CHECK(a.channels[c].nbins == b.channels[c].nbins);
    CHECK(a.channels[c].masked == b.channels[c].masked);
    REQUIRE(a.channels[c].axes.size() == b.channels[c].axes.size());
    for (std::size_t k = 0; k < a.channels[c].axes.size(); ++k) {
      CHECK(a.channels[c].axes[k].name == b.channels[c].axes[k].name);
      CHECK(a.channels[c].axes[k].edges == b.channels[c].axes[k].edges);
      CHECK(a.channels[c].axes[k].labels == b.channels[c].axes[k].labels);
    }
  }
  CHECK(a.nbins == b.nbins);
  CHECK(a.nbins_full == b.nbins_full);
  CHECK(a.data_obs == b.data_obs);
  CHECK(a.data_var.size() == b.data_var.size());
  if (a.data_var.size() == b.data_var.size()) CHECK(a.data_var == b.data_var);
  CHECK(a.pseudodata.size() == b.pseudodata.size());
  if (a.pseudodata.size() == b.pseudodata.size() && a.pseudodata.size() > 0)
    CHECK(a.pseudodata == b.pseudodata);
  CHECK(a.pseudodata_names == b.pseudodata_names);
  CHECK(a.sumw.rows() == b.sumw.rows());
  CHECK(a.sumw.cols() == b.sumw.cols());
  if (a.sumw.size() == b.sumw.size() && a.sumw.size() > 0) CHECK(a.sumw == b.sumw);
  REQUIRE(a.sumw2.rows() == b.sumw2.rows());
  REQUIRE(a.sumw2.cols() == b.sumw2.cols());
  CHECK(a.sumw2 == b.sumw2);
  const auto& ta = a.tensor;
  const auto& tb = b.tensor;
  CHECK(ta.row_bin == tb.row_bin);
  CHECK(ta.row_proc == tb.row_proc);
  CHECK(ta.norm == tb.norm);
  CHECK(ta.row_start == tb.row_start);
  CHECK(ta.syst == tb.syst);
  CHECK(ta.logk_avg == tb.logk_avg);
  CHECK(ta.logk_halfdiff == tb.logk_halfdiff);
}

// A synthetic model with every optional feature filled in: masked channel, groups, NOIs, free
// nuisances, scales/units, pseudodata, data variance.
inline engine::Model RichModel(bool asymmetric, engine::SystematicType type, std::uint64_t seed,
                               double density = 1.0) {
  models::SyntheticSpec spec;
  spec.nbins = 12;
  spec.nmasked = 3;
  spec.nproc = 3;
  spec.nsignal = 2;
  spec.nsyst = 6;
  spec.nfree = 1;
  spec.nnoi = 2;
  spec.asymmetric = asymmetric;
  spec.type = type;
  spec.density = density;
  spec.seed = seed;
  engine::Model m = models::MakeSyntheticModel(spec);
  m.groups = {{"theory", {1, 2}}, {"experimental", {3, 4, 5}}, {"empty", {}}};
  m.constraint_weights[5] = 0.25;  // prior width 2
  m.systematic_scales.assign(spec.nsyst, 0.0);
  m.systematic_units.assign(spec.nsyst, "");
  m.systematic_scales[0] = 100.0;
  m.systematic_units[0] = "MeV";
  m.data_var = m.data_obs.array() + 1.0;
  m.pseudodata = Eigen::MatrixXd(m.nbins, 2);
  m.pseudodata.col(0) = m.data_obs;
  m.pseudodata.col(1) = m.data_obs.array() * 2.0;
  m.pseudodata_names = {"asimov", "doubled"};
  m.channels[0].axes = {{"pt", {}}, {"eta", {-2.4, 0.0, 2.4}}};
  m.channels[0].axes[0].edges = {25, 30, 35, 40, 45, 50, 55};
  return m;
}

// ---- raw HDF5 edits ---------------------------------------------------------------------------

class H5File {
 public:
  explicit H5File(const std::string& path) {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    id_ = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    REQUIRE(id_ >= 0);
  }
  ~H5File() { H5Fclose(id_); }
  H5File(const H5File&) = delete;
  H5File& operator=(const H5File&) = delete;
  hid_t id() const { return id_; }

  void Delete(const std::string& name) { REQUIRE(H5Ldelete(id_, name.c_str(), H5P_DEFAULT) >= 0); }
  void DeleteAttribute(const std::string& object, const std::string& attr) {
    REQUIRE(H5Adelete_by_name(id_, object.c_str(), attr.c_str(), H5P_DEFAULT) >= 0);
  }

  // Writes a dataset (replacing any existing one). original_shape empty: natively shaped with
  // dims `dims`; otherwise 1-D with the original_shape attribute.
  void WriteNumeric(const std::string& name, hid_t file_type, hid_t mem_type, const void* data,
                    const std::vector<hsize_t>& dims,
                    const std::vector<std::int64_t>& original_shape = {},
                    hid_t dcpl = H5P_DEFAULT) {
    if (H5Lexists(id_, name.c_str(), H5P_DEFAULT) > 0) Delete(name);
    hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
    hid_t dset = H5Dcreate2(id_, name.c_str(), file_type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    REQUIRE(dset >= 0);
    hsize_t n = 1;
    for (auto d : dims) n *= d;
    if (n > 0) REQUIRE(H5Dwrite(dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
    if (!original_shape.empty()) {
      hsize_t r = original_shape.size();
      hid_t aspace = H5Screate_simple(1, &r, nullptr);
      hid_t attr =
          H5Acreate2(dset, "original_shape", H5T_STD_I64LE, aspace, H5P_DEFAULT, H5P_DEFAULT);
      REQUIRE(H5Awrite(attr, H5T_NATIVE_INT64, original_shape.data()) >= 0);
      H5Aclose(attr);
      H5Sclose(aspace);
    }
    H5Dclose(dset);
    H5Sclose(space);
  }
  void WriteDoubles(const std::string& name, const std::vector<double>& v,
                    const std::vector<std::int64_t>& original_shape) {
    WriteNumeric(name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, v.data(), {v.size()}, original_shape);
  }
  void WriteInts(const std::string& name, const std::vector<std::int64_t>& v,
                 const std::vector<std::int64_t>& original_shape) {
    WriteNumeric(name, H5T_STD_I64LE, H5T_NATIVE_INT64, v.data(), {v.size()}, original_shape);
  }

  std::vector<double> ReadDoubles(const std::string& name) {
    hid_t dset = H5Dopen2(id_, name.c_str(), H5P_DEFAULT);
    REQUIRE(dset >= 0);
    hid_t space = H5Dget_space(dset);
    std::vector<double> v(static_cast<std::size_t>(H5Sget_simple_extent_npoints(space)));
    if (!v.empty())
      REQUIRE(H5Dread(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) >= 0);
    H5Sclose(space);
    H5Dclose(dset);
    return v;
  }
  std::vector<std::int64_t> ReadInts(const std::string& name) {
    hid_t dset = H5Dopen2(id_, name.c_str(), H5P_DEFAULT);
    REQUIRE(dset >= 0);
    hid_t space = H5Dget_space(dset);
    std::vector<std::int64_t> v(static_cast<std::size_t>(H5Sget_simple_extent_npoints(space)));
    if (!v.empty())
      REQUIRE(H5Dread(dset, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) >= 0);
    H5Sclose(space);
    H5Dclose(dset);
    return v;
  }
  std::vector<hsize_t> Dims(const std::string& name) {
    hid_t dset = H5Dopen2(id_, name.c_str(), H5P_DEFAULT);
    REQUIRE(dset >= 0);
    hid_t space = H5Dget_space(dset);
    std::vector<hsize_t> dims(static_cast<std::size_t>(H5Sget_simple_extent_ndims(space)));
    H5Sget_simple_extent_dims(space, dims.data(), nullptr);
    H5Sclose(space);
    H5Dclose(dset);
    return dims;
  }
  std::vector<std::string> ReadVlenStrings(const std::string& name) {
    hid_t dset = H5Dopen2(id_, name.c_str(), H5P_DEFAULT);
    REQUIRE(dset >= 0);
    hid_t space = H5Dget_space(dset);
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    hid_t file_type = H5Dget_type(dset);
    H5Tset_cset(type, H5Tget_cset(file_type));
    H5Tclose(file_type);
    std::vector<char*> buf(static_cast<std::size_t>(H5Sget_simple_extent_npoints(space)));
    std::vector<std::string> out;
    if (!buf.empty()) {
      REQUIRE(H5Dread(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) >= 0);
      for (char* p : buf) {
        out.emplace_back(p ? p : "");
        H5free_memory(p);
      }
    }
    H5Tclose(type);
    H5Sclose(space);
    H5Dclose(dset);
    return out;
  }
  double ReadDoubleAttribute(const std::string& object, const std::string& attr_name) {
    hid_t attr = H5Aopen_by_name(id_, object.c_str(), attr_name.c_str(), H5P_DEFAULT, H5P_DEFAULT);
    REQUIRE(attr >= 0);
    double v = 0;
    REQUIRE(H5Aread(attr, H5T_NATIVE_DOUBLE, &v) >= 0);
    H5Aclose(attr);
    return v;
  }
  // Changes one element of a float64 dataset in place (keeps attributes).
  void SetDouble(const std::string& name, std::size_t index, double value) {
    auto v = ReadDoubles(name);
    REQUIRE(index < v.size());
    v[index] = value;
    hid_t dset = H5Dopen2(id_, name.c_str(), H5P_DEFAULT);
    REQUIRE(H5Dwrite(dset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) >= 0);
    H5Dclose(dset);
  }
  void SetInt(const std::string& name, std::size_t index, std::int64_t value) {
    auto v = ReadInts(name);
    REQUIRE(index < v.size());
    v[index] = value;
    hid_t dset = H5Dopen2(id_, name.c_str(), H5P_DEFAULT);
    REQUIRE(H5Dwrite(dset, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()) >= 0);
    H5Dclose(dset);
  }
  // Variable-length (fixed_size == 0) or fixed-length null-padded strings.
  void WriteStrings(const std::string& name, const std::vector<std::string>& values,
                    std::size_t fixed_size = 0) {
    if (H5Lexists(id_, name.c_str(), H5P_DEFAULT) > 0) Delete(name);
    hid_t type = H5Tcopy(H5T_C_S1);
    hsize_t n = values.size();
    hid_t space = H5Screate_simple(1, &n, nullptr);
    if (fixed_size == 0) {
      H5Tset_size(type, H5T_VARIABLE);
      H5Tset_cset(type, H5T_CSET_UTF8);
      std::vector<const char*> ptrs;
      for (const auto& v : values) ptrs.push_back(v.c_str());
      hid_t dset =
          H5Dcreate2(id_, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      REQUIRE(H5Dwrite(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, ptrs.data()) >= 0);
      H5Dclose(dset);
    } else {
      H5Tset_size(type, fixed_size);
      H5Tset_strpad(type, H5T_STR_NULLPAD);
      std::vector<char> buf(n * fixed_size, '\0');
      for (std::size_t i = 0; i < n; ++i)
        values[i].copy(buf.data() + i * fixed_size, std::min(fixed_size, values[i].size()));
      hid_t dset =
          H5Dcreate2(id_, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
      REQUIRE(H5Dwrite(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) >= 0);
      H5Dclose(dset);
    }
    H5Sclose(space);
    H5Tclose(type);
  }
  // Replaces (or creates) a 1-D int64 attribute of `object` ("/" or a group/dataset path).
  void SetInt64Attribute(const std::string& object, const std::string& attr_name,
                         const std::vector<std::int64_t>& values) {
    if (H5Aexists_by_name(id_, object.c_str(), attr_name.c_str(), H5P_DEFAULT) > 0)
      DeleteAttribute(object, attr_name);
    hsize_t n = values.size();
    hid_t space = H5Screate_simple(1, &n, nullptr);
    hid_t attr = H5Acreate_by_name(id_, object.c_str(), attr_name.c_str(), H5T_STD_I64LE, space,
                                   H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    REQUIRE(attr >= 0);
    REQUIRE(H5Awrite(attr, H5T_NATIVE_INT64, values.data()) >= 0);
    H5Aclose(attr);
    H5Sclose(space);
  }
  // A chunked float64 dataset of `dims` with nothing written (every element is the fill value),
  // so a tiny file can declare an enormous dataset.
  void WriteUnallocated(const std::string& name, const std::vector<hsize_t>& dims) {
    if (H5Lexists(id_, name.c_str(), H5P_DEFAULT) > 0) Delete(name);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    std::vector<hsize_t> chunk(dims.size(), 1024);
    REQUIRE(H5Pset_chunk(dcpl, static_cast<int>(chunk.size()), chunk.data()) >= 0);
    hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
    REQUIRE(space >= 0);
    hid_t dset =
        H5Dcreate2(id_, name.c_str(), H5T_IEEE_F64LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    REQUIRE(dset >= 0);
    H5Dclose(dset);
    H5Sclose(space);
    H5Pclose(dcpl);
  }
  // Replaces the root meta_json attribute.
  void SetMetaJson(const std::string& text) {
    if (H5Aexists(id_, "meta_json") > 0) DeleteAttribute("/", "meta_json");
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    H5Tset_cset(type, H5T_CSET_UTF8);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = H5Acreate2(id_, "meta_json", type, space, H5P_DEFAULT, H5P_DEFAULT);
    const char* p = text.c_str();
    REQUIRE(H5Awrite(attr, type, &p) >= 0);
    H5Aclose(attr);
    H5Sclose(space);
    H5Tclose(type);
  }
  std::string ReadStringAttribute(const std::string& object, const std::string& attr_name) {
    hid_t attr = H5Aopen_by_name(id_, object.c_str(), attr_name.c_str(), H5P_DEFAULT, H5P_DEFAULT);
    REQUIRE(attr >= 0);
    hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    hid_t file_type = H5Aget_type(attr);
    H5Tset_cset(type, H5Tget_cset(file_type));  // HDF5 does not convert between charsets
    H5Tclose(file_type);
    char* p = nullptr;
    REQUIRE(H5Aread(attr, type, &p) >= 0);
    std::string out = p ? p : "";
    H5free_memory(p);
    H5Tclose(type);
    H5Aclose(attr);
    return out;
  }

 private:
  hid_t id_ = -1;
};

// Writes `model` to a fresh temp file and returns its path.
inline std::string WriteTemp(const engine::Model& model, const std::string& stem,
                             engine::StorageKind storage = engine::StorageKind::kDense,
                             bool gzip = false) {
  const std::string path = TempPath(stem, ".hdf5");
  lepus::io::WriteOptions opt;
  opt.storage = storage;
  opt.gzip = gzip;
  lepus::io::WriteFitInput(model, path, opt);
  return path;
}

// The InputError message of reading `path` ("" if it reads fine).
inline std::string ReadError(const std::string& path) {
  try {
    lepus::io::ReadFitInput(path);
  } catch (const lepus::io::InputError& e) {
    return e.what();
  }
  return "";
}

inline bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace lepus::test::io
