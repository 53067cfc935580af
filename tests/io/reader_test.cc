// Reader: writer -> reader round trips (every field compared), dense vs sparse equivalence, and
// the file variants rabbit and other writers produce (natively shaped arrays, fixed-length
// strings, integer data, gzip, no metadata, rabbit's ln(1e-3) placeholder).
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <hdf5.h>

#include "io_test_util.h"
#include "lepus/io/reader.h"
#include "lepus/io/writer.h"
#include "test_support.h"

namespace {

using lepus::engine::Model;
using lepus::engine::StorageKind;
using lepus::engine::SystematicType;
using lepus::io::ReadFitInput;
using lepus::io::ReadInfo;
using lepus::test::io::Contains;
using lepus::test::io::ExpectSameModel;
using lepus::test::io::H5File;
using lepus::test::io::ReadError;
using lepus::test::io::RichModel;
using lepus::test::io::WriteTemp;

}  // namespace

TEST_CASE("reader: round trip dense/sparse x symmetric/asymmetric x log-normal/normal") {
  std::uint64_t seed = 11;
  for (auto type : {SystematicType::kLogNormal, SystematicType::kNormal}) {
    for (bool asym : {false, true}) {
      for (auto storage : {StorageKind::kDense, StorageKind::kSparse}) {
        for (double density : {1.0, 0.3}) {
          CAPTURE(lepus::engine::ToString(type));
          CAPTURE(asym);
          CAPTURE(lepus::engine::ToString(storage));
          CAPTURE(density);
          Model m = RichModel(asym, type, seed++, density);
          m.storage = storage;
          const std::string path = WriteTemp(m, "roundtrip", storage);
          ReadInfo info;
          const Model r = ReadFitInput(path, &info);
          CHECK(info.has_meta);
          CHECK(info.warnings.empty());
          CHECK(info.path == path);
          CHECK(info.filters.empty());
          ExpectSameModel(m, r);
        }
      }
    }
  }
}

TEST_CASE("reader: dense and sparse files of the same model give identical models") {
  for (bool asym : {false, true}) {
    const Model m = RichModel(asym, SystematicType::kLogNormal, 5, 0.5);
    const Model d = ReadFitInput(WriteTemp(m, "dense", StorageKind::kDense));
    const Model s = ReadFitInput(WriteTemp(m, "sparse", StorageKind::kSparse));
    CHECK(d.storage == StorageKind::kDense);
    CHECK(s.storage == StorageKind::kSparse);
    ExpectSameModel(d, s, /*compare_storage=*/false);
  }
}

TEST_CASE("reader: gzip-compressed files read the same and report the filter") {
  const Model m = RichModel(true, SystematicType::kLogNormal, 3);
  for (auto storage : {StorageKind::kDense, StorageKind::kSparse}) {
    ReadInfo info;
    const Model r = ReadFitInput(WriteTemp(m, "gzip", storage, /*gzip=*/true), &info);
    CHECK(info.filters == std::vector<std::string>{"gzip"});
    ExpectSameModel(m, r, false);
  }
}

TEST_CASE("reader: natively shaped datasets, fixed-length strings, integer data") {
  const Model m = RichModel(true, SystematicType::kLogNormal, 4);
  const std::string path = WriteTemp(m, "variants");
  {
    H5File f(path);
    // hnorm as a native 2-D float32-free dataset, hlogk as native 4-D, no original_shape.
    const auto norm = f.ReadDoubles("hnorm");
    f.WriteNumeric("hnorm", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, norm.data(),
                   {static_cast<hsize_t>(m.nbins_full), static_cast<hsize_t>(m.num_processes())});
    const auto logk = f.ReadDoubles("hlogk");
    f.WriteNumeric("hlogk", H5T_IEEE_F64BE, H5T_NATIVE_DOUBLE, logk.data(),
                   {static_cast<hsize_t>(m.nbins_full), static_cast<hsize_t>(m.num_processes()), 2,
                    static_cast<hsize_t>(m.num_systematics())});
    // Observed counts stored as int32 (they are integers for Poisson data).
    std::vector<std::int32_t> counts;
    for (double v : f.ReadDoubles("hdata_obs")) counts.push_back(static_cast<std::int32_t>(v));
    f.WriteNumeric("hdata_obs", H5T_STD_I32LE, H5T_NATIVE_INT32, counts.data(), {counts.size()});
    // Fixed-length, null-padded names (numpy "S" arrays).
    f.WriteStrings("hprocs", m.processes, 16);
    f.WriteStrings("hsysts", m.systematics, 8);
    // noi indices as float64 holding integers.
    std::vector<double> noi(m.noi_indices.begin(), m.noi_indices.end());
    f.WriteNumeric("hnoiidxs", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, noi.data(), {noi.size()});
  }
  const Model r = ReadFitInput(path);
  ExpectSameModel(m, r);
}

TEST_CASE("reader: a file without meta_json falls back to one channel plus a masked one") {
  const Model m = RichModel(false, SystematicType::kLogNormal, 6);
  const std::string path = WriteTemp(m, "nometa");
  H5File(path).DeleteAttribute("/", "meta_json");
  ReadInfo info;
  const Model r = ReadFitInput(path, &info);
  CHECK_FALSE(info.has_meta);
  REQUIRE(info.warnings.size() == 1);
  CHECK(Contains(info.warnings[0], path));
  CHECK(Contains(info.warnings[0], "no meta_json"));
  CHECK(Contains(info.warnings[0], "\"ch0\" with 12 integer bins"));
  CHECK(Contains(info.warnings[0], "\"masked\" with 3 bins"));
  REQUIRE(r.channels.size() == 2);
  CHECK(r.channels[0].name == "ch0");
  CHECK(r.channels[0].nbins == 12);
  CHECK(r.channels[0].axes.empty());
  CHECK(r.channels[1].name == "masked");
  CHECK(r.channels[1].masked);
  CHECK(r.systematic_scales.empty());
  CHECK(r.systematic_type == SystematicType::kLogNormal);
  CHECK(r.tensor.logk_avg == m.tensor.logk_avg);
}

TEST_CASE("reader: meta_json as written by lepus") {
  const Model m = RichModel(true, SystematicType::kNormal, 7);
  const std::string path = WriteTemp(m, "meta", StorageKind::kSparse);
  const std::string text = H5File(path).ReadStringAttribute("/", "meta_json");
  CHECK(Contains(text, "\"lepus_meta_version\":1"));
  CHECK(Contains(text, "\"systematic_type\":\"normal\""));
  CHECK(Contains(text, "\"storage\":\"sparse\""));
  CHECK(Contains(text, "\"symmetric\":false"));
  CHECK(Contains(text, "\"unit\":\"MeV\""));
  CHECK(Contains(text, "\"edges\":[-2.4,0.0,2.4]"));
}

TEST_CASE("reader: hsystsnoconstraint disagreeing with hconstraintweights is a warning") {
  const Model m = RichModel(false, SystematicType::kLogNormal, 8);
  const std::string path = WriteTemp(m, "noconstraint");
  H5File(path).WriteStrings("hsystsnoconstraint", {"syst2"});
  ReadInfo info;
  const Model r = ReadFitInput(path, &info);
  CHECK(r.constraint_weights == m.constraint_weights);  // the weights are the truth
  REQUIRE(info.warnings.size() == 1);
  CHECK(Contains(info.warnings[0], "hsystsnoconstraint disagrees"));
  CHECK(Contains(info.warnings[0], "syst0"));
  CHECK(Contains(info.warnings[0], "syst2"));
}

TEST_CASE("reader: without hconstraintweights, hsystsnoconstraint decides") {
  const Model m = RichModel(false, SystematicType::kLogNormal, 9);
  const std::string path = WriteTemp(m, "nocw");
  H5File(path).Delete("hconstraintweights");
  ReadInfo info;
  const Model r = ReadFitInput(path, &info);
  CHECK(r.constraint_weights == std::vector<double>{0, 1, 1, 1, 1, 1});
  CHECK_FALSE(info.warnings.empty());
}

TEST_CASE("reader: optional datasets may be absent") {
  const Model m = RichModel(false, SystematicType::kLogNormal, 10);
  const std::string path = WriteTemp(m, "optional");
  {
    H5File f(path);
    for (const char* name : {"hdata_var", "hpseudodata", "hpseudodatanames", "hsystgroups",
                             "hsystgroupidxs", "hnoiidxs", "hsumw", "hsumw2", "hsystsnoconstraint"})
      f.Delete(name);
  }
  const Model r = ReadFitInput(path);
  CHECK(r.data_var.size() == 0);
  CHECK(r.pseudodata.size() == 0);
  CHECK(r.groups.empty());
  CHECK(r.noi_indices.empty());
  CHECK(r.sumw.size() == 0);
  CHECK(r.sumw2.isZero());
  CHECK(r.sumw2.rows() == m.nbins_full);
  CHECK(r.tensor.norm == m.tensor.norm);
}

TEST_CASE("reader: rabbit's ln(1e-3) placeholder at zero nominal is accepted and dropped") {
  Model m = RichModel(false, SystematicType::kLogNormal, 12);
  const int nproc = m.num_processes(), nsyst = m.num_systematics();
  const std::string path = WriteTemp(m, "placeholder");
  {
    H5File f(path);
    // Zero the nominal of (bin 2, process 1) and put the placeholder in all its logk entries,
    // as rabbit does for an empty template.
    f.SetDouble("hnorm", 2 * nproc + 1, 0.0);
    for (int s = 0; s < nsyst; ++s)
      f.SetDouble("hlogk", (2 * nproc + 1) * nsyst + s, std::log(1e-3));
  }
  ReadInfo info;
  const Model r = ReadFitInput(path, &info);
  REQUIRE(info.warnings.size() == 1);
  CHECK(Contains(info.warnings[0], std::to_string(nsyst) + " logk entries"));
  CHECK(Contains(info.warnings[0], "ln(1e-3)"));
  CHECK(r.tensor.num_rows() == m.tensor.num_rows() - 1);
  CHECK(r.DenseNorm()(2, 1) == 0.0);

  // The same with the asymmetric planes (avg 0, halfdiff ln(1e-3)) in a sparse file.
  Model a = RichModel(true, SystematicType::kLogNormal, 13);
  const std::string spath = WriteTemp(a, "placeholder-sparse", StorageKind::kSparse);
  {
    H5File f(spath);
    const auto nidx = f.ReadInts("hnorm_sparse/indices");
    const auto kidx = f.ReadInts("hlogk_sparse/indices");
    const auto kval = f.ReadDoubles("hlogk_sparse/values");
    // Row 0 of hnorm_sparse: zero nominal; its logk: avg 0 and halfdiff placeholder.
    f.SetDouble("hnorm_sparse/values", 0, 0.0);
    for (std::size_t i = 0; i < kval.size(); ++i)
      if (kidx[2 * i] == 0)
        f.SetDouble("hlogk_sparse/values", i, kidx[2 * i + 1] < nsyst ? 1e-300 : -std::log(1e-3));
    (void)nidx;
  }
  // 1e-300 is not a placeholder: rejected with the message naming the entry.
  const std::string err = ReadError(spath);
  CHECK(Contains(err, "hlogk_sparse/values["));
  CHECK(Contains(err, "1e-300"));
  CHECK(Contains(err, "nominal yield is 0"));
}

namespace {

// A fixed-length string dataset (as numpy 'S' arrays are written), for names the writer would
// not produce.
void WriteFixedStrings(hid_t file, const std::string& name, const std::vector<std::string>& v) {
  std::size_t len = 1;
  for (const auto& x : v) len = std::max(len, x.size());
  std::string buf(len * v.size(), '\0');
  for (std::size_t i = 0; i < v.size(); ++i) buf.replace(i * len, v[i].size(), v[i]);
  hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, len);
  const hsize_t dims[1] = {v.size()};
  hid_t space = H5Screate_simple(1, dims, nullptr);
  hid_t dset = H5Dcreate2(file, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  REQUIRE(dset >= 0);
  REQUIRE(H5Dwrite(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()) >= 0);
  H5Dclose(dset);
  H5Sclose(space);
  H5Tclose(type);
}

Model WithCovarianceAndExternalTerms() {
  Model m = RichModel(false, SystematicType::kLogNormal, 14);
  m.data_cov_inv = Eigen::MatrixXd::Identity(m.nbins, m.nbins) * 0.5;
  m.data_cov_inv(0, 1) = m.data_cov_inv(1, 0) = 0.1;
  lepus::engine::ExternalTerm t;
  t.name = "prior";
  t.params = {0, m.num_signals + 1, m.num_signals + 2};
  t.grad = Eigen::Vector3d(0.5, -1.0, 0.25);
  Eigen::MatrixXd h(3, 3);
  h << 2, 0.5, 0, 0.5, 1, 0, 0, 0, 3;
  t.hess = h.sparseView();
  m.external_terms.push_back(t);
  lepus::engine::ExternalTerm g;
  g.name = "slope";
  g.params = {m.num_signals};
  g.grad = Eigen::VectorXd::Constant(1, 0.7);
  m.external_terms.push_back(g);
  return m;
}

void ExpectSameTerms(const Model& a, const Model& b) {
  REQUIRE(a.external_terms.size() == b.external_terms.size());
  for (std::size_t e = 0; e < a.external_terms.size(); ++e) {
    const auto &x = a.external_terms[e], &y = b.external_terms[e];
    CHECK(x.name == y.name);
    CHECK(x.params == y.params);
    CHECK(x.grad == y.grad);
    CHECK(Eigen::MatrixXd(x.hess) == Eigen::MatrixXd(y.hess));
  }
}

}  // namespace

TEST_CASE(
    "reader: hdata_cov_inv and external terms round trip; hess_dense reads like hess_sparse") {
  const Model m = WithCovarianceAndExternalTerms();
  const std::string path = WriteTemp(m, "extterms");
  ReadInfo info;
  const Model r = ReadFitInput(path, &info);
  CHECK(info.warnings.empty());
  CHECK(r.data_cov_inv == m.data_cov_inv);
  ExpectSameTerms(m, r);
  // rabbit's dense Hessian layout.
  {
    H5File f(path);
    f.Delete("external_terms/prior/hess_sparse");
    f.WriteDoubles("external_terms/prior/hess_dense", {2, 0.5, 0, 0.5, 1, 0, 0, 0, 3}, {3, 3});
  }
  ExpectSameTerms(m, ReadFitInput(path));
}

TEST_CASE("reader: bad external terms are rejected naming the term, the dataset and the value") {
  const Model m = WithCovarianceAndExternalTerms();
  auto fresh = [&](const std::string& stem) { return WriteTemp(m, stem); };
  {
    const std::string path = fresh("ext_unknown");
    {
      H5File f(path);
      f.Delete("external_terms/prior/params");
      WriteFixedStrings(f.id(), "external_terms/prior/params",
                        {"nope", m.systematics[1], m.systematics[2]});
    }
    const std::string err = ReadError(path);
    CHECK(Contains(err, "external_terms/prior/params[0]"));
    CHECK(Contains(err, "\"nope\""));
  }
  {
    const std::string path = fresh("ext_grad");
    {
      H5File f(path);
      f.Delete("external_terms/prior/grad_values");
      f.WriteDoubles("external_terms/prior/grad_values", {1.0, 2.0}, {2});
    }
    CHECK(Contains(ReadError(path), "external_terms/prior/grad_values"));
  }
  {
    const std::string path = fresh("ext_dup");
    {
      H5File f(path);
      f.Delete("external_terms/prior/hess_sparse/indices");
      f.Delete("external_terms/prior/hess_sparse/values");
      f.WriteInts("external_terms/prior/hess_sparse/indices", {0, 0, 0, 0}, {2, 2});
      f.WriteDoubles("external_terms/prior/hess_sparse/values", {1.0, 2.0}, {2});
    }
    CHECK(Contains(ReadError(path), "entries must be unique"));
  }
  {
    const std::string path = fresh("ext_nan");
    {
      H5File f(path);
      f.Delete("external_terms/slope/grad_values");
      f.WriteDoubles("external_terms/slope/grad_values", {NAN}, {1});
    }
    CHECK(Contains(ReadError(path), "external_terms/slope/grad_values"));
  }
}

TEST_CASE(
    "reader: the rest of rabbit's format: beta variations, auxiliary data, old names, unknown "
    "members") {
  const Model m = RichModel(false, SystematicType::kLogNormal, 15);
  const int nproc = m.num_processes();
  {
    const std::string path = WriteTemp(m, "betavar");
    // rabbit's layout [nbinsfull, nbins, nproc], row-major: entry (i, j, p) = i + 10 j + 100 p.
    std::vector<double> bv(static_cast<std::size_t>(m.nbins_full * m.nbins * nproc));
    for (std::int64_t i = 0; i < m.nbins_full; ++i)
      for (std::int64_t j = 0; j < m.nbins; ++j)
        for (int p = 0; p < nproc; ++p)
          bv[static_cast<std::size_t>((i * m.nbins + j) * nproc + p)] = i + 10.0 * j + 100.0 * p;
    {
      H5File f(path);
      f.WriteDoubles("hbetavariations", bv, {m.nbins_full, m.nbins, nproc});
      f.WriteDoubles("hfuture", {1.0}, {1});
    }
    ReadInfo info;
    const Model r = ReadFitInput(path, &info);
    REQUIRE(info.warnings.size() == 1);
    CHECK(Contains(info.warnings[0], "hfuture"));
    REQUIRE(r.beta_variations.size() == static_cast<std::size_t>(nproc));
    for (int p = 0; p < nproc; ++p) {
      REQUIRE(r.beta_variations[p].rows() == m.nbins_full);
      REQUIRE(r.beta_variations[p].cols() == m.nbins);
      CHECK(r.beta_variations[p](m.nbins_full - 1, 2) == m.nbins_full - 1 + 20.0 + 100.0 * p);
      CHECK(r.beta_variations[p](0, m.nbins - 1) == 10.0 * (m.nbins - 1) + 100.0 * p);
    }
    // The writer writes them back in the same layout.
    const std::string again = WriteTemp(r, "betavar_again");
    const Model r2 = ReadFitInput(again);
    REQUIRE(r2.beta_variations.size() == r.beta_variations.size());
    for (int p = 0; p < nproc; ++p) CHECK(r2.beta_variations[p] == r.beta_variations[p]);
  }
  {
    const std::string path = WriteTemp(m, "betavar_shape");
    H5File(path).WriteDoubles("hbetavariations", {0.0, 0.0}, {1, 2});
    CHECK(Contains(ReadError(path), "hbetavariations"));
  }
  {
    const std::string path = WriteTemp(m, "kstat");
    {
      H5File f(path);
      f.Delete("hsumw2");
      f.WriteDoubles("hkstat", {1.0}, {1});
    }
    CHECK(Contains(ReadError(path), "hkstat"));
  }
  {
    // hnoigroupidxs: the older name of hnoiidxs.
    const std::string path = WriteTemp(m, "noigroup");
    std::vector<std::int64_t> noi;
    {
      H5File f(path);
      noi = f.ReadInts("hnoiidxs");
      f.Delete("hnoiidxs");
      f.WriteInts("hnoigroupidxs", noi, {static_cast<std::int64_t>(noi.size())});
    }
    ReadInfo info;
    const Model r = ReadFitInput(path, &info);
    CHECK(info.warnings.empty());
    CHECK(r.noi_indices == m.noi_indices);
  }
}
