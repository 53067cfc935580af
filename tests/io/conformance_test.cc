// Reading the conformance kit (tests/data/conformance): files written the way rabbit writes
// them (flattened datasets with original_shape, vlen strings, no meta_json). The fit of these
// files against expected.json is tested in the engine/conformance tests; here: what is read.
#include <cmath>
#include <string>

#include <doctest/doctest.h>

#include "io_test_util.h"
#include "lepus/io/reader.h"
#include "test_support.h"

namespace {

using lepus::engine::Model;
using lepus::engine::StorageKind;
using lepus::io::ReadFitInput;
using lepus::io::ReadInfo;
using lepus::test::io::Contains;
using lepus::test::io::ExpectSameModel;

std::string Kit(const std::string& name) { return lepus::test::ConformanceDir() + "/" + name; }

Model Read(const std::string& name, ReadInfo* info) {
  Model m = ReadFitInput(Kit(name), info);
  std::string error;
  CHECK_MESSAGE(m.IsValid(&error), error);
  return m;
}

void CheckFallbackMeta(const Model& m, const ReadInfo& info, std::int64_t nbins,
                       std::int64_t nmasked) {
  CHECK_FALSE(info.has_meta);
  REQUIRE_FALSE(info.warnings.empty());
  CHECK(Contains(info.warnings.front(), "meta_json"));
  CHECK(Contains(info.warnings.front(), "ch0"));
  CHECK(info.file_bytes > 0);
  REQUIRE(m.channels.size() == (nmasked > 0 ? 2u : 1u));
  CHECK(m.channels[0].name == "ch0");
  CHECK(m.channels[0].nbins == nbins);
  CHECK_FALSE(m.channels[0].masked);
  if (nmasked > 0) {
    CHECK(m.channels[1].name == "masked");
    CHECK(m.channels[1].nbins == nmasked);
    CHECK(m.channels[1].masked);
  }
  CHECK(m.systematic_type == lepus::engine::SystematicType::kLogNormal);
}

}  // namespace

TEST_CASE("conformance: sym_poi dense and sparse") {
  ReadInfo dense_info, sparse_info;
  const Model dense = Read("sym_poi_dense.hdf5", &dense_info);
  const Model sparse = Read("sym_poi_sparse.hdf5", &sparse_info);
  for (const Model* m : {&dense, &sparse}) {
    CHECK(m->nbins == 40);
    CHECK(m->nbins_full == 40);
    CHECK(m->num_processes() == 3);
    CHECK(m->num_signals == 1);
    CHECK(m->processes[0] == "sig");
    REQUIRE(m->num_systematics() == 8);
    for (int s = 0; s < 8; ++s) CHECK(m->systematics[s] == "syst" + std::to_string(s));
    CHECK(m->constraint_weights == std::vector<double>(8, 1.0));
    CHECK(m->noi_indices.empty());
    REQUIRE(m->groups.size() == 1);
    CHECK(m->groups[0].name == "shape");
    CHECK(m->groups[0].members == std::vector<int>{0, 1, 2, 3});
    CHECK_FALSE(m->asymmetric);
    CHECK(m->tensor.logk_halfdiff.empty());
    // "8 symmetric shape systematics on every process": every row has entries.
    CHECK(m->tensor.num_rows() == 40 * 3);
    CHECK(m->sumw2.isZero());
    CHECK(m->pseudodata.size() == 0);
  }
  CheckFallbackMeta(dense, dense_info, 40, 0);
  CheckFallbackMeta(sparse, sparse_info, 40, 0);
  CHECK(dense.storage == StorageKind::kDense);
  CHECK(sparse.storage == StorageKind::kSparse);
  ExpectSameModel(dense, sparse, /*compare_storage=*/false);
}

TEST_CASE("conformance: bblite_mixed_masked") {
  ReadInfo info;
  const Model m = Read("bblite_mixed_masked.hdf5", &info);
  CHECK(m.nbins == 30);
  CHECK(m.nbins_full == 35);
  CHECK(m.processes == std::vector<std::string>{"sig", "bkg_mc", "bkg_datadriven"});
  CHECK(m.num_signals == 1);
  CHECK(m.systematics == std::vector<std::string>{"shift", "slope_free", "norm_mc", "shape_sig"});
  CHECK(m.constraint_weights == std::vector<double>{0, 0, 1, 1});
  CHECK(m.noi_indices == std::vector<int>{0});
  CHECK_FALSE(m.asymmetric);
  CHECK(m.storage == StorageKind::kDense);
  CheckFallbackMeta(m, info, 30, 5);
  // One process has no MC variance; the others do, including in the masked rows.
  CHECK(m.sumw2.rows() == 35);
  CHECK(m.sumw2.col(2).isZero());
  CHECK(m.sumw2.col(1).sum() > 0);
  CHECK(m.sumw2.bottomRows(5).sum() > 0);
  // Masked rows are part of the tensor.
  bool masked_rows = false;
  for (auto b : m.tensor.row_bin) masked_rows = masked_rows || b >= 30;
  CHECK(masked_rows);
  // hsumw agrees with the nominal where given.
  REQUIRE(m.sumw.rows() == 35);
  CHECK(lepus::test::MaxRelDiff(m.sumw, m.DenseNorm(), 1e-12) < 1e-12);
}

TEST_CASE("conformance: asym_noi dense and sparse") {
  ReadInfo dense_info, sparse_info;
  const Model dense = Read("asym_noi_dense.hdf5", &dense_info);
  const Model sparse = Read("asym_noi_sparse.hdf5", &sparse_info);
  for (const Model* m : {&dense, &sparse}) {
    CHECK(m->nbins == 25);
    CHECK(m->nbins_full == 25);
    CHECK(m->processes.size() == 2);
    CHECK(m->num_signals == 1);
    CHECK(m->processes[0] == "sig");
    CHECK(m->systematics == std::vector<std::string>{"mass", "jes", "bkgshape"});
    CHECK(m->constraint_weights == std::vector<double>{0, 1, 1});
    CHECK(m->noi_indices == std::vector<int>{0});
    CHECK(m->asymmetric);
    CHECK(m->tensor.logk_halfdiff.size() == m->tensor.logk_avg.size());
    bool any_halfdiff = false;
    for (double h : m->tensor.logk_halfdiff) any_halfdiff = any_halfdiff || h != 0.0;
    CHECK(any_halfdiff);
    CHECK(m->groups.empty());
  }
  CheckFallbackMeta(dense, dense_info, 25, 0);
  CheckFallbackMeta(sparse, sparse_info, 25, 0);
  CHECK(sparse.storage == StorageKind::kSparse);
  ExpectSameModel(dense, sparse, /*compare_storage=*/false);
}

TEST_CASE("conformance: files survive a lepus write/read round trip") {
  for (const char* name :
       {"sym_poi_dense.hdf5", "bblite_mixed_masked.hdf5", "asym_noi_sparse.hdf5"}) {
    CAPTURE(name);
    const Model original = ReadFitInput(Kit(name));
    for (auto storage : {StorageKind::kDense, StorageKind::kSparse}) {
      const std::string path = lepus::test::io::WriteTemp(original, "conf-roundtrip", storage);
      ReadInfo info;
      const Model again = ReadFitInput(path, &info);
      CHECK(info.has_meta);
      CHECK(info.warnings.empty());
      CHECK(again.storage == storage);
      ExpectSameModel(original, again, /*compare_storage=*/false);
    }
  }
}
