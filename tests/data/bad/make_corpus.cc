// Writes the HDF5 files of the bad-input corpus (tests/data/bad/, MANIFEST.tsv lists every file
// with the command that reads it and the message expected). Not part of the test run: the files
// are committed; rebuild them after a deliberate change with
//   cmake --build build --target lepus_make_bad_corpus
//   ./build/tests/io/lepus_make_bad_corpus   (writes into tests/data/bad/)
// Each file is a valid lepus file with one defect made with the HDF5 C API (io_test_util.h), so
// the defect is independent of lepus's own writer.
#include <hdf5.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include <doctest/doctest.h>

#include "io_test_util.h"
#include "lepus/io/writer.h"
#include "lepus/models/event_file.h"
#include "lepus/models/generator.h"
#include "test_support.h"

namespace {

namespace fs = std::filesystem;
using lepus::engine::Model;
using lepus::engine::StorageKind;
using lepus::engine::SystematicType;
using lepus::test::io::H5File;
using lepus::test::io::RichModel;

fs::path CorpusDir() {
  const char* env = std::getenv("LEPUS_BAD_CORPUS_DIR");
  return env != nullptr ? fs::path(env) : fs::path(lepus::test::SourceDir()) / "tests/data/bad";
}

Model Base(bool asym = false) { return RichModel(asym, SystematicType::kLogNormal, 21); }

// A valid fit input named `name` in the corpus directory.
std::string FitInput(const std::string& name, const Model& m = Base(),
                     StorageKind storage = StorageKind::kDense) {
  const std::string path = (CorpusDir() / name).string();
  lepus::io::WriteOptions opt;
  opt.storage = storage;
  lepus::io::WriteFitInput(m, path, opt);
  return path;
}

// A simulation (or data) event file of W -> mu nu events, edited by `edit` before writing.
template <typename Edit>
std::string EventFile(const std::string& name, Edit edit, bool data = false) {
  lepus::models::GeneratorConfig config =
      data ? lepus::models::GeneratorConfig::DefaultData() : lepus::models::GeneratorConfig{};
  config.num_events = 300;
  config.luminosity_pb = data ? 0.03 : 100.0;
  config.seed = data ? 8 : 7;
  const lepus::models::Generator generator(config);
  auto source = lepus::models::MakeGeneratorSource(config, 1);
  lepus::models::EventBatch all, batch;
  while (source->Next(&batch, 4096) > 0) all.Append(batch);
  REQUIRE(all.size() > 100);
  edit(all);
  const std::string path = (CorpusDir() / name).string();
  lepus::models::EventFileWriterOptions opt;
  opt.num_threads = 1;
  opt.chunk_events = 512;  // small files
  lepus::models::EventFileWriter writer(
      path, lepus::models::MakeEventFileMetadata(generator, "lepus bad-input corpus"), opt);
  writer.Append(all);
  writer.Close();
  return path;
}
std::string EventFile(const std::string& name, bool data = false) {
  return EventFile(name, [](lepus::models::EventBatch&) {}, data);
}

void Text(const std::string& name, const std::string& text) {
  std::ofstream(CorpusDir() / name, std::ios::binary) << text;
}

}  // namespace

TEST_CASE("write the bad-input corpus") {
  fs::create_directories(CorpusDir());
  const Model m = Base();
  const Model asym = Base(true);
  const std::int64_t nbf = m.nbins_full, nb = m.nbins, np = m.num_processes();
  const int ns = m.num_systematics();

  // ---- fit inputs
  Text("fitinput_text.h5", "hnorm,hlogk\n1,2\n");
  Text("fitinput_empty.h5", "");
  {
    const std::string path = FitInput("fitinput_truncated.h5");
    fs::resize_file(path, fs::file_size(path) / 2);
  }
  for (const char* name : {"hprocs", "hsysts", "hdata_obs", "hlogk", "hnorm"}) {
    const std::string path = FitInput(std::string("fitinput_missing_") + name + ".h5");
    H5File(path).Delete(name);
  }
  H5File(FitInput("fitinput_shape_hnorm.h5"))
      .WriteDoubles("hnorm", std::vector<double>(nbf * (np - 1), 1.0), {nbf, np - 1});
  H5File(FitInput("fitinput_shape_hlogk.h5"))
      .WriteDoubles("hlogk", std::vector<double>(nbf * np * 3 * ns, 0.0), {nbf, np, 3, ns});
  H5File(FitInput("fitinput_original_shape.h5"))
      .WriteDoubles("hdata_obs", std::vector<double>(nb, 1.0), {nb + 1});
  H5File(FitInput("fitinput_shape_constraintweights.h5"))
      .WriteDoubles("hconstraintweights", {1.0, 1.0}, {2});
  H5File(FitInput("fitinput_nan_hlogk.h5", asym))
      .SetDouble("hlogk", ((1 * np + 2) * 2 + 1) * ns + 4, std::nan(""));
  H5File(FitInput("fitinput_inf_hnorm.h5"))
      .SetDouble("hnorm", 7, std::numeric_limits<double>::infinity());
  H5File(FitInput("fitinput_negative_data.h5")).SetDouble("hdata_obs", 4, -3.5);
  H5File(FitInput("fitinput_nan_data.h5")).SetDouble("hdata_obs", 0, std::nan(""));
  H5File(FitInput("fitinput_negative_pseudodata.h5")).SetDouble("hpseudodata", 3, -1.0);
  H5File(FitInput("fitinput_negative_sumw2.h5")).SetDouble("hsumw2", 0, -2.0);
  H5File(FitInput("fitinput_negative_nominal.h5")).SetDouble("hnorm", 3 * np + 0, -5.0);
  H5File(FitInput("fitinput_sparse_bin.h5", asym, StorageKind::kSparse))
      .SetInt("hnorm_sparse/indices", 2 * 3, 99);
  H5File(FitInput("fitinput_sparse_process.h5", asym, StorageKind::kSparse))
      .SetInt("hnorm_sparse/indices", 2 * 4 + 1, -1);
  H5File(FitInput("fitinput_sparse_column.h5", asym, StorageKind::kSparse))
      .SetInt("hlogk_sparse/indices", 2 * 10 + 1, 12);
  {
    H5File f(FitInput("fitinput_sparse_duplicate.h5", asym, StorageKind::kSparse));
    const auto idx = f.ReadInts("hnorm_sparse/indices");
    f.SetInt("hnorm_sparse/indices", 2, idx[0]);
    f.SetInt("hnorm_sparse/indices", 3, idx[1]);
  }
  H5File(FitInput("fitinput_noi_index.h5"))
      .WriteNumeric("hnoiidxs", H5T_STD_I32LE, H5T_NATIVE_INT32,
                    std::vector<std::int32_t>{0, 6}.data(), {2});
  H5File(FitInput("fitinput_negative_constraint.h5")).SetDouble("hconstraintweights", 1, -1.0);
  H5File(FitInput("fitinput_signals_prefix.h5")).WriteStrings("hsignals", {"sig0", "bkg2"});
  H5File(FitInput("fitinput_duplicate_process.h5")).WriteStrings("hprocs", {"sig0", "sig1", "sig0"});
  H5File(FitInput("fitinput_type_hprocs.h5")).WriteDoubles("hprocs", {1.0, 2.0, 3.0}, {3});
  H5File(FitInput("fitinput_type_hdata_obs.h5")).WriteStrings("hdata_obs", {"1", "2"});
  H5File(FitInput("fitinput_noconstraint_unknown.h5")).WriteStrings("hsystsnoconstraint", {"nosuch"});
  H5File(FitInput("fitinput_meta_not_json.h5")).SetMetaJson("{not json");
  H5File(FitInput("fitinput_meta_version.h5"))
      .SetMetaJson(R"({"lepus_meta_version": 2, "systematic_type": "log_normal", "channels": []})");
  H5File(FitInput("fitinput_meta_edges.h5"))
      .SetMetaJson(R"({"lepus_meta_version": 1, "systematic_type": "normal",
                       "channels": [{"name": "a", "masked": false, "nbins": 12,
                                     "axes": [{"name": "x", "edges": [0, 2, 1]}]}]})");

  // ---- fit inputs: declared sizes, names
  H5File(FitInput("fitinput_huge_dims.h5")).WriteUnallocated("hdata_obs", {hsize_t{1} << 50});
  {
    H5File f(FitInput("fitinput_huge_dense_shape.h5", asym, StorageKind::kSparse));
    f.Delete("hsumw2");
    f.SetInt64Attribute("hnorm_sparse", "dense_shape", {std::int64_t{1} << 40, 3});
  }
  H5File(FitInput("fitinput_original_shape_overflow.h5"))
      .WriteNumeric("hnorm", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, nullptr, {0},
                    {std::int64_t{1} << 32, std::int64_t{1} << 32});
  H5File(FitInput("fitinput_utf8_process.h5")).WriteStrings("hprocs", {"sig0", "sig1", "bkg\xff"});
  {
    H5File f(FitInput("fitinput_utf8_systematic.h5"));
    auto names = f.ReadVlenStrings("hsysts");
    names[1] = "s\xc0\xaf";  // overlong '/'
    f.WriteStrings("hsysts", names);
  }
  H5File(FitInput("fitinput_duplicate_group.h5"))
      .WriteStrings("hsystgroups", {"theory", "experimental", "theory"});
  H5File(FitInput("fitinput_duplicate_pseudodata.h5"))
      .WriteStrings("hpseudodatanames", {"asimov", "asimov"});
  H5File(FitInput("fitinput_meta_nbins_huge.h5"))
      .SetMetaJson(R"({"lepus_meta_version": 1, "systematic_type": "log_normal",
                       "channels": [{"name": "a", "masked": false, "nbins": 9223372036854775807}]})");

  // ---- event files (read by produce wmass with events_data.h5 as the data)
  Text("events_text.h5", "event_number,weight\n1,1.0\n");
  EventFile("events_data.h5", true);
  H5File(EventFile("events_missing_column.h5")).Delete("events/weight");
  {
    H5File f(EventFile("events_schema_version.h5"));
    const std::int64_t v = 99;
    hid_t a = H5Aopen(f.id(), "schema_version", H5P_DEFAULT);
    REQUIRE(H5Awrite(a, H5T_NATIVE_INT64, &v) >= 0);
    H5Aclose(a);
  }
  using lepus::models::EventBatch;
  EventFile("events_nan_weight.h5", [](EventBatch& b) { b.weight[17] = std::nan(""); });
  EventFile("events_inf_met.h5",
            [](EventBatch& b) { b.met_pt[23] = -std::numeric_limits<double>::infinity(); });
  EventFile("events_nan_muon_pt.h5", [](EventBatch& b) {
    std::size_t k = 0;
    while (b.n_muons[k] < 1) ++k;
    b.muon[0].pt[k] = std::nan("");
  });
  EventFile("events_inf_boson_mass.h5",
            [](EventBatch& b) { b.v_mass[5] = std::numeric_limits<double>::infinity(); });
  EventFile("events_duplicate_number.h5", [](EventBatch& b) {
    std::size_t j = 10, k = 40;
    while (b.process[k] != b.process[j]) ++k;
    b.event_number[k] = b.event_number[j];
  });
}
