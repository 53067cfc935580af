// HistFactory JSON workspaces (io/src/workspace.cc): the model built from every modifier type,
// interpolation options, gzip input, JSON Patch and patchset application, format detection and
// the messages of malformed workspaces (each names the JSON path).
#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "io_test_util.h"
#include "lepus/io/workspace.h"

namespace {

using lepus::engine::ConstraintKind;
using lepus::engine::EntryKind;
using lepus::engine::Model;
using lepus::io::InputError;
using lepus::io::ModelFromWorkspace;
using lepus::io::ReadOptions;
using lepus::test::io::Contains;
using Json = nlohmann::json;

// Two channels listed out of order (SR before CR) with every modifier type: the same workspace
// as tests/data/histfactory/two_channel.json.
Json TwoChannel() {
  return Json::parse(R"({
 "channels": [
  {"name": "SR", "samples": [
    {"name": "signal", "data": [5.0, 10.0, 3.0], "modifiers": [
      {"name": "mu", "type": "normfactor", "data": null},
      {"name": "lumi", "type": "lumi", "data": null},
      {"name": "sig_theory", "type": "normsys", "data": {"hi": 1.1, "lo": 0.85}},
      {"name": "staterror_SR", "type": "staterror", "data": [0.5, 1.0, 0.0]}]},
    {"name": "background", "data": [50.0, 40.0, 0.0], "modifiers": [
      {"name": "lumi", "type": "lumi", "data": null},
      {"name": "jes", "type": "normsys", "data": {"hi": 1.05, "lo": 0.97}},
      {"name": "jes", "type": "histosys", "data": {"hi_data": [52.0, 41.0, 0.5], "lo_data": [49.0, 38.5, 0.0]}},
      {"name": "staterror_SR", "type": "staterror", "data": [2.0, 2.0, 0.0]},
      {"name": "bkg_shape", "type": "shapesys", "data": [5.0, 8.0, 0.0]}]}]},
  {"name": "CR", "samples": [
    {"name": "background", "data": [100.0, 80.0], "modifiers": [
      {"name": "lumi", "type": "lumi", "data": null},
      {"name": "jes", "type": "normsys", "data": {"hi": 1.04, "lo": 0.96}},
      {"name": "cr_shape", "type": "shapefactor", "data": null},
      {"name": "staterror_CR", "type": "staterror", "data": [3.0, 2.5]}]},
    {"name": "other", "data": [10.0, 12.0], "modifiers": []}]}],
 "observations": [{"name": "SR", "data": [57.0, 52.0, 1.0]}, {"name": "CR", "data": [110.0, 95.0]}],
 "measurements": [
  {"name": "main", "config": {"poi": "mu", "parameters": [
     {"name": "lumi", "auxdata": [1.0], "sigmas": [0.02], "bounds": [[0.5, 1.5]], "inits": [1.0]},
     {"name": "mu", "bounds": [[0.0, 5.0]]}]}},
  {"name": "fixed_jes", "config": {"poi": "mu", "parameters": [
     {"name": "lumi", "auxdata": [1.0], "sigmas": [0.05]},
     {"name": "jes", "fixed": true, "inits": [0.5]}]}}],
 "version": "1.0.0"})");
}

int Col(const Model& m, const std::string& name) {
  for (int s = 0; s < m.num_systematics(); ++s)
    if (m.systematics[s] == name) return s;
  FAIL("no systematic " << name);
  return -1;
}

// Index of the row (bin, process name), -1 if absent.
long Row(const Model& m, int bin, const std::string& proc) {
  for (long r = 0; r < m.tensor.num_rows(); ++r)
    if (m.tensor.row_bin[r] == bin && m.processes[m.tensor.row_proc[r]] == proc) return r;
  return -1;
}

struct E {
  std::string syst;
  EntryKind kind;
  double up, down;
};
std::vector<E> Entries(const Model& m, long r) {
  std::vector<E> out;
  for (auto i = m.tensor.row_start[r]; i < m.tensor.row_start[r + 1]; ++i)
    out.push_back({m.systematics[m.tensor.syst[i]], m.tensor.entry_kind[i], m.tensor.entry_up[i],
                   m.tensor.entry_down[i]});
  return out;
}

std::string ErrorOf(const Json& ws, const ReadOptions& options = {}) {
  try {
    ModelFromWorkspace(ws, options, "ws.json");
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

// The workspace with one JSON Patch operation applied.
Json Patched(const Json& op) { return TwoChannel().patch(Json::array({op})); }

std::string DataDir() { return lepus::test::TestDataDir() + "/histfactory"; }

}  // namespace

TEST_CASE("workspace: channels, processes and parameters in pyhf's order") {
  const Model m = ModelFromWorkspace(TwoChannel(), ReadOptions{});
  REQUIRE(m.channels.size() == 2);
  CHECK(m.channels[0].name == "CR");
  CHECK(m.channels[1].name == "SR");
  CHECK(m.channels[0].nbins == 2);
  CHECK(m.channels[1].nbins == 3);
  CHECK_FALSE(m.channels[0].masked);
  CHECK(m.nbins == 5);
  CHECK(m.nbins_full == 5);
  CHECK(m.processes == std::vector<std::string>{"background", "other", "signal"});
  CHECK(m.num_signals == 0);
  // Modifier types in pyhf's builder order (histosys, lumi, normfactor, normsys, shapefactor,
  // shapesys, staterror), each by first appearance; per-bin sets as name[i].
  CHECK(m.systematics == std::vector<std::string>{"jes", "lumi", "mu", "sig_theory", "cr_shape[0]",
                                                  "cr_shape[1]", "bkg_shape[0]", "bkg_shape[1]",
                                                  "bkg_shape[2]", "staterror_CR[0]",
                                                  "staterror_CR[1]", "staterror_SR[0]",
                                                  "staterror_SR[1]", "staterror_SR[2]"});
  CHECK(m.noi_indices == std::vector<int>{Col(m, "mu")});
  CHECK(m.data_obs.size() == 5);
  CHECK(m.data_obs(0) == 110.0);
  CHECK(m.data_obs(2) == 57.0);
  CHECK(m.data_obs(4) == 1.0);
  CHECK(m.sumw2.rows() == 5);
  CHECK(m.sumw2.cols() == 3);
  CHECK(m.sumw2.isZero());
  std::string error;
  CHECK(m.IsValid(&error));
}

TEST_CASE("workspace: rows and entries of every modifier type") {
  const Model m = ModelFromWorkspace(TwoChannel(), ReadOptions{});
  // Rows by bin then process; the SR background bin with zero nominal stays (histosys adds to it).
  CHECK(m.tensor.num_rows() == 10);
  for (long r = 1; r < m.tensor.num_rows(); ++r)
    CHECK((m.tensor.row_bin[r] > m.tensor.row_bin[r - 1] ||
           (m.tensor.row_bin[r] == m.tensor.row_bin[r - 1] &&
            m.tensor.row_proc[r] > m.tensor.row_proc[r - 1])));

  // CR bin 0, background: normsys jes, lumi, shapefactor, staterror_CR.
  long r = Row(m, 0, "background");
  REQUIRE(r >= 0);
  CHECK(m.tensor.norm[r] == 100.0);
  auto e = Entries(m, r);
  REQUIRE(e.size() == 4);
  CHECK(e[0].syst == "jes");
  CHECK(e[0].kind == EntryKind::kNormsysCode4);
  CHECK(e[0].up == 1.04);
  CHECK(e[0].down == 0.96);
  CHECK(e[1].syst == "lumi");
  CHECK(e[1].kind == EntryKind::kFactor);
  CHECK(e[2].syst == "cr_shape[0]");
  CHECK(e[2].kind == EntryKind::kFactor);
  CHECK(e[3].syst == "staterror_CR[0]");
  // "other" has no modifiers: a row without entries.
  r = Row(m, 1, "other");
  REQUIRE(r >= 0);
  CHECK(m.tensor.norm[r] == 12.0);
  CHECK(Entries(m, r).empty());

  // SR bin 1 (global 3), background: histosys + normsys of one parameter, in column order.
  r = Row(m, 3, "background");
  REQUIRE(r >= 0);
  e = Entries(m, r);
  REQUIRE(e.size() == 5);
  CHECK(e[0].syst == "jes");
  CHECK(e[1].syst == "jes");
  CHECK(e[0].kind != e[1].kind);
  for (const E& x : {e[0], e[1]}) {
    if (x.kind == EntryKind::kHistosysCode4p) {
      CHECK(x.up == doctest::Approx(1.0));     // 41 - 40
      CHECK(x.down == doctest::Approx(-1.5));  // 38.5 - 40
    } else {
      CHECK(x.kind == EntryKind::kNormsysCode4);
      CHECK(x.up == 1.05);
      CHECK(x.down == 0.97);
    }
  }
  CHECK(e[2].syst == "lumi");
  CHECK(e[3].syst == "bkg_shape[1]");
  CHECK(e[4].syst == "staterror_SR[1]");
  // SR bin 2 (global 4): background nominal 0 kept for its histosys; signal with mu.
  r = Row(m, 4, "background");
  REQUIRE(r >= 0);
  CHECK(m.tensor.norm[r] == 0.0);
  r = Row(m, 4, "signal");
  REQUIRE(r >= 0);
  e = Entries(m, r);
  REQUIRE(e.size() == 4);
  CHECK(e[0].syst == "lumi");
  CHECK(e[1].syst == "mu");
  CHECK(e[1].kind == EntryKind::kFactor);
  CHECK(e[2].syst == "sig_theory");
  CHECK(e[2].up == 1.1);
  CHECK(e[2].down == 0.85);
  CHECK(e[3].syst == "staterror_SR[2]");
  // "other" is not in SR: no rows there.
  CHECK(Row(m, 2, "other") < 0);
}

TEST_CASE("workspace: constraints, initial values, bounds and fixed parameters") {
  const Model m = ModelFromWorkspace(TwoChannel(), ReadOptions{});
  auto check = [&](const std::string& name, ConstraintKind kind, double cw, double centre,
                   double init, double lo, double hi, bool fixed) {
    CAPTURE(name);
    const int s = Col(m, name);
    CHECK(m.constraint_kinds[s] == kind);
    CHECK(m.constraint_weights[s] == doctest::Approx(cw));
    CHECK(m.global_observables[s] == doctest::Approx(centre));
    CHECK(m.initial_values[s] == doctest::Approx(init));
    CHECK(m.lower_bounds[s] == lo);
    CHECK(m.upper_bounds[s] == hi);
    CHECK((m.fixed[s] != 0) == fixed);
  };
  const auto G = ConstraintKind::kGaussian;
  const auto P = ConstraintKind::kPoisson;
  check("mu", G, 0.0, 1.0, 1.0, 0.0, 5.0, false);  // bounds from the measurement
  check("lumi", G, 1.0 / (0.02 * 0.02), 1.0, 1.0, 0.5, 1.5, false);
  check("jes", G, 1.0, 0.0, 0.0, -5.0, 5.0, false);
  check("sig_theory", G, 1.0, 0.0, 0.0, -5.0, 5.0, false);
  check("cr_shape[1]", G, 0.0, 1.0, 1.0, 0.0, 10.0, false);
  // shapesys: tau = (nominal / uncertainty)^2; a bin without uncertainty is fixed (tau 1).
  check("bkg_shape[0]", P, 100.0, 1.0, 1.0, 1e-10, 10.0, false);
  check("bkg_shape[1]", P, 25.0, 1.0, 1.0, 1e-10, 10.0, false);
  check("bkg_shape[2]", P, 1.0, 1.0, 1.0, 1e-10, 10.0, true);
  // staterror: sigma = sqrt(sum unc^2) / sum nominal over the samples carrying it.
  const double s0 = std::sqrt(0.5 * 0.5 + 2.0 * 2.0) / 55.0;
  check("staterror_SR[0]", G, 1.0 / (s0 * s0), 1.0, 1.0, 1e-10, 10.0, false);
  const double s1 = std::sqrt(1.0 + 4.0) / 50.0;
  check("staterror_SR[1]", G, 1.0 / (s1 * s1), 1.0, 1.0, 1e-10, 10.0, false);
  check("staterror_SR[2]", G, 1.0, 1.0, 1.0, 1e-10, 10.0, true);  // sigma 0: fixed, width 1
  check("staterror_CR[0]", G, 1.0 / (0.03 * 0.03), 1.0, 1.0, 1e-10, 10.0, false);

  // The second measurement: lumi sigma 0.05 with pyhf-less defaults, jes fixed at 0.5.
  ReadOptions opt;
  opt.measurement = "fixed_jes";
  const Model f = ModelFromWorkspace(TwoChannel(), opt);
  const int lumi = Col(f, "lumi"), jes = Col(f, "jes");
  CHECK(f.constraint_weights[lumi] == doctest::Approx(400.0));
  CHECK(f.lower_bounds[lumi] == 0.0);
  CHECK(f.upper_bounds[lumi] == 10.0);
  CHECK(f.fixed[jes] == 1);
  CHECK(f.initial_values[jes] == 0.5);
  CHECK(f.upper_bounds[Col(f, "mu")] == 10.0);  // pyhf's default [0, 10]
}

TEST_CASE("workspace: interpolation codes") {
  ReadOptions opt;
  opt.normsys_interp = "code1";
  opt.histosys_interp = "code0";
  const Model m = ModelFromWorkspace(TwoChannel(), opt);
  int normsys = 0, histosys = 0;
  for (EntryKind k : m.tensor.entry_kind) {
    CHECK(k != EntryKind::kNormsysCode4);
    CHECK(k != EntryKind::kHistosysCode4p);
    normsys += k == EntryKind::kNormsysCode1;
    histosys += k == EntryKind::kHistosysCode0;
  }
  CHECK(normsys == 3 + 2 + 3);  // jes on SR and CR background, sig_theory on SR signal
  CHECK(histosys == 3);
  opt.normsys_interp = "code2";
  CHECK(Contains(ErrorOf(TwoChannel(), opt),
                 "normsys interpolation is 'code2', but must be code1 or code4"));
  opt.normsys_interp = "code4";
  opt.histosys_interp = "code1";
  CHECK(Contains(ErrorOf(TwoChannel(), opt),
                 "histosys interpolation is 'code1', but must be code0 or code4p"));
}

TEST_CASE("workspace: files, gzip and format detection") {
  using lepus::io::LooksLikeWorkspace;
  using lepus::io::ReadFitInput;
  const std::string plain = DataDir() + "/two_channel.json",
                    gz = DataDir() + "/two_channel.json.gz";
  CHECK(LooksLikeWorkspace(plain));
  CHECK(LooksLikeWorkspace(gz));
  lepus::io::ReadInfo info;
  const Model a = ReadFitInput(plain, &info);
  CHECK(info.meta_format == "histfactory");
  CHECK(info.file_bytes > 0);
  const Model b = ReadFitInput(gz);
  const Model c = ModelFromWorkspace(TwoChannel(), ReadOptions{});
  CHECK(a.systematics == c.systematics);
  CHECK(b.systematics == c.systematics);
  CHECK(a.tensor.norm == c.tensor.norm);
  CHECK(b.tensor.entry_up == c.tensor.entry_up);
  CHECK(b.data_obs == c.data_obs);

  // Content, not the extension: JSON named .h5, leading white space, and an HDF5 file.
  const std::string odd = lepus::test::TempPath("workspace", ".h5");
  {
    std::ofstream out(odd);
    out << "\n  \t" << TwoChannel().dump();
  }
  CHECK(LooksLikeWorkspace(odd));
  CHECK(ReadFitInput(odd).systematics == c.systematics);
  const std::string h5 = lepus::test::io::WriteTemp(
      lepus::test::io::RichModel(false, lepus::engine::SystematicType::kLogNormal, 3), "ws_detect");
  CHECK_FALSE(LooksLikeWorkspace(h5));
  CHECK_NOTHROW(ReadFitInput(h5));
  // Workspace options on an HDF5 input are refused.
  ReadOptions opt;
  opt.measurement = "main";
  try {
    ReadFitInput(h5, nullptr, opt);
    FAIL("expected an InputError");
  } catch (const InputError& e) {
    CHECK(Contains(e.what(), "apply to HistFactory JSON workspaces only"));
  }

  // Broken files.
  const std::string bad_json = lepus::test::TempPath("workspace_bad", ".json");
  {
    std::ofstream out(bad_json);
    out << "{\"channels\": [";
  }
  CHECK(Contains(lepus::test::io::ReadError(bad_json), "is not valid JSON"));
  const std::string bad_gz = lepus::test::TempPath("workspace_bad", ".gz");
  {
    std::ifstream in(gz, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream out(bad_gz, std::ios::binary);
    out << bytes.substr(0, bytes.size() / 2);
  }
  CHECK(Contains(lepus::test::io::ReadError(bad_gz), "not a valid gzip stream"));
}

TEST_CASE("workspace: JSON Patch files and patchsets") {
  const std::string ws = DataDir() + "/two_channel.json";
  ReadOptions opt;
  opt.patches = {DataDir() + "/two_channel_patch.json"};
  Model m = lepus::io::ReadWorkspace(ws, opt);
  CHECK(m.data_obs(2) == 60.0);  // observations[0] is SR
  CHECK(m.data_obs(4) == 2.0);
  const int other_norm = Col(m, "other_norm");
  CHECK(m.constraint_weights[other_norm] == 0.0);

  opt = ReadOptions{};
  opt.patchset = DataDir() + "/two_channel_patchset.json";
  opt.patch_name = "mass_400";
  m = lepus::io::ReadWorkspace(ws, opt);
  const long r = Row(m, 2, "signal");
  REQUIRE(r >= 0);
  CHECK(m.tensor.norm[r] == 2.0);
  // staterror_SR[0] now from (0.3, 2.0) over 52.
  const double s0 = std::sqrt(0.3 * 0.3 + 4.0) / 52.0;
  CHECK(m.constraint_weights[Col(m, "staterror_SR[0]")] == doctest::Approx(1.0 / (s0 * s0)));

  // Patch files and patchset together: the files first.
  opt.patches = {DataDir() + "/two_channel_patch.json"};
  m = lepus::io::ReadWorkspace(ws, opt);
  CHECK(m.data_obs(2) == 60.0);
  CHECK(m.tensor.norm[Row(m, 2, "signal")] == 2.0);

  auto error = [&](const ReadOptions& o) {
    try {
      lepus::io::ReadWorkspace(ws, o);
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  ReadOptions bad;
  bad.patchset = opt.patchset;
  bad.patch_name = "mass_999";
  CHECK(Contains(error(bad), "has no patch named 'mass_999' (available: 'mass_300', 'mass_400')"));
  bad.patch_name = "";
  CHECK(Contains(error(bad), "a patchset needs the name of the patch to apply"));
  const std::string failing = lepus::test::TempPath("patch_fail", ".json");
  {
    std::ofstream out(failing);
    out << R"([{"op": "test", "path": "/version", "value": "1.0.0"},
               {"op": "remove", "path": "/channels/7"}])";
  }
  bad = ReadOptions{};
  bad.patches = {failing};
  const std::string msg = error(bad);
  CHECK(Contains(msg, failing + "[1] (remove /channels/7): cannot be applied"));
  {
    std::ofstream out(failing);
    out << R"({"op": "remove", "path": "/channels/0"})";
  }
  CHECK(Contains(error(bad), "but must be a JSON Patch (an array of operations, RFC 6902)"));
  bad.patches = {DataDir() + "/no_such_patch.json"};
  CHECK(Contains(error(bad), "no_such_patch.json: no such file"));
}

TEST_CASE("workspace: error messages name the JSON path") {
  struct Case {
    Json op;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{{"op", "replace"},
        {"path", "/channels/1/samples/0/modifiers/3/data"},
        {"value", {1.0, 2.0, 3.0}}},
       "ws.json: channels[1].samples[0].modifiers[3].data: has 3 entries, but the channel has 2 "
       "bins"},
      {{{"op", "replace"}, {"path", "/channels/0/samples/1/data"}, {"value", {1.0, 2.0}}},
       "channels[0].samples[1].data: has 2 entries, but the channel has 3 bins"},
      {{{"op", "replace"}, {"path", "/channels/0/samples/1/data/1"}, {"value", -1.0}},
       "channels[0].samples[1].data[1]: is -1, but must be >= 0"},
      {{{"op", "replace"}, {"path", "/channels/0/samples/1/data/1"}, {"value", "x"}},
       "channels[0].samples[1].data[1]: is \"x\" (string), but must be a number"},
      {{{"op", "replace"},
        {"path", "/channels/0/samples/0/modifiers/0/type"},
        {"value", "normfactr"}},
       "channels[0].samples[0].modifiers[0].type: is 'normfactr', but must be one of histosys, "
       "lumi"},
      {{{"op", "replace"}, {"path", "/channels/0/samples/0/modifiers/2/data/lo"}, {"value", 0.0}},
       "channels[0].samples[0].modifiers[2].data.lo: is 0, but must be > 0"},
      {{{"op", "replace"}, {"path", "/channels/0/samples/0/modifiers/2/data"}, {"value", {1.0}}},
       "channels[0].samples[0].modifiers[2].data: is [1.0] (array), but must be an object"},
      {{{"op", "remove"}, {"path", "/channels/0/samples/1/modifiers/2/data/hi_data"}},
       "channels[0].samples[1].modifiers[2].data.hi_data: is missing, but is required"},
      {{{"op", "replace"}, {"path", "/channels/0/samples/0/modifiers/0/data"}, {"value", 1.0}},
       "channels[0].samples[0].modifiers[0].data: is 1.0 (number), but must be null for a "
       "normfactor modifier"},
      {{{"op", "replace"}, {"path", "/channels/0/samples/0/modifiers/1/name"}, {"value", "lumi2"}},
       "a lumi modifier must be named 'lumi'"},
      {{{"op", "add"}, {"path", "/channels/0/samples/0/modifiers/0/extra"}, {"value", 1}},
       "channels[0].samples[0].modifiers[0].extra: is not a known key here"},
      {{{"op", "replace"}, {"path", "/channels/1/name"}, {"value", "SR"}},
       "channels[1].name: is 'SR', but channels[0] has the same name"},
      {{{"op", "replace"}, {"path", "/channels/0/samples/1/name"}, {"value", "signal"}},
       "channels[0].samples[1].name: is 'signal', but channels[0].samples[0] has the same name"},
      {{{"op", "replace"}, {"path", "/channels/0/samples"}, {"value", Json::array()}},
       "channels[0].samples: is empty, but a channel needs at least one sample"},
      {{{"op", "replace"}, {"path", "/channels"}, {"value", "SR"}},
       "channels: is \"SR\" (string), but must be an array"},
      {{{"op", "remove"}, {"path", "/observations/1"}},
       "observations: has no entry named 'CR', but every channel needs its observed data"},
      {{{"op", "replace"}, {"path", "/observations/1/data"}, {"value", {1.0}}},
       "observations[1].data: has 1 entries, but channel 'CR' has 2 bins"},
      {{{"op", "replace"}, {"path", "/observations/1/data/0"}, {"value", -3}},
       "observations[1].data[0]: is -3, but must be >= 0"},
      {{{"op", "replace"}, {"path", "/version"}, {"value", "2.0.0"}},
       "version: is '2.0.0', but must be '1.0.0'"},
      {{{"op", "replace"}, {"path", "/measurements/0/config/poi"}, {"value", "mu_sig"}},
       "measurements[0].config.poi: is 'mu_sig', but no modifier defines a parameter of that name"},
      {{{"op", "replace"}, {"path", "/measurements/0/config/poi"}, {"value", "bkg_shape"}},
       "measurements[0].config.poi: is 'bkg_shape', but that parameter set has 3 components"},
      {{{"op", "remove"}, {"path", "/measurements/0/config/parameters/0"}},
       "measurements[0].config.parameters: has no entry for 'lumi' with auxdata and sigmas"},
      {{{"op", "add"},
        {"path", "/measurements/0/config/parameters/-"},
        {"value", {{"name", "mu"}, {"fixed", true}}}},
       "measurements[0].config.parameters[2].name: is 'mu', but "
       "measurements[0].config.parameters[1] configures it already"},
      {{{"op", "add"},
        {"path", "/measurements/0/config/parameters/-"},
        {"value", {{"name", "jes"}, {"sigmas", {2.0}}}}},
       "measurements[0].config.parameters[2].sigmas: is given, but parameter 'jes' (histosys) does "
       "not use sigmas"},
      {{{"op", "add"},
        {"path", "/measurements/0/config/parameters/-"},
        {"value", {{"name", "bkg_shape"}, {"inits", {1.0}}}}},
       "measurements[0].config.parameters[2].inits: has 1 entries, but parameter 'bkg_shape' "
       "(shapesys) has 3 components"},
      {{{"op", "add"},
        {"path", "/measurements/0/config/parameters/-"},
        {"value", {{"name", "sig_theory"}, {"bounds", {{2.0, 1.0}}}}}},
       "bounds[0]: is [2, 1], but must satisfy lower <= upper"},
      {{{"op", "add"},
        {"path", "/measurements/0/config/parameters/-"},
        {"value", {{"name", "sig_theory"}, {"inits", {7.0}}}}},
       "parameter 'sig_theory' starts at 7, but must start inside its bounds [-5, 5]"},
      {{{"op", "add"},
        {"path", "/measurements/0/config/parameters/-"},
        {"value", {{"name", "cr_shape"}, {"fixed", "yes"}}}},
       "fixed: is \"yes\" (string), but must be true or false"},
      // A name shared by modifiers of different types.
      {{{"op", "replace"}, {"path", "/channels/0/samples/0/modifiers/2/name"}, {"value", "mu"}},
       "(normfactor) defines a parameter set of the same name and a normsys modifier cannot share "
       "its parameter with a normfactor modifier"},
      // shapesys parameters belong to one sample.
      {{{"op", "add"},
        {"path", "/channels/0/samples/0/modifiers/-"},
        {"value", {{"name", "bkg_shape"}, {"type", "shapesys"}, {"data", {1.0, 1.0, 1.0}}}}},
       "is a shapesys modifier of the same name"},
      // staterror on one sample in both channels, on another only in SR.
      {{{"op", "add"},
        {"path", "/channels/1/samples/1/modifiers/-"},
        {"value", {{"name", "staterror_SR"}, {"type", "staterror"}, {"data", {1.0, 1.0}}}}},
       "pyhf requires every sample with a staterror to carry it in the same channels"},
      // A shapefactor shared by a 2-bin and a 3-bin channel (the 2-bin CR defines it).
      {{{"op", "add"},
        {"path", "/channels/0/samples/1/modifiers/-"},
        {"value", {{"name", "cr_shape"}, {"type", "shapefactor"}, {"data", nullptr}}}},
       "a shapefactor of 3 bins, but channels[1].samples[0].modifiers[2] defines it with 2 bins"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.op.dump());
    const std::string msg = ErrorOf(Patched(c.op));
    CAPTURE(msg);
    CHECK(Contains(msg, c.message));
    CHECK(Contains(msg, "ws.json: "));
  }
  // Wrong top-level types and unknown measurement.
  CHECK(Contains(ErrorOf(Json::array()),
                 "ws.json: (top level): is [] (array), but must be a JSON object"));
  CHECK(Contains(ErrorOf(Json::object()),
                 "ws.json: (top level).channels: is missing, but is required"));
  ReadOptions opt;
  opt.measurement = "nope";
  CHECK(Contains(ErrorOf(TwoChannel(), opt),
                 "measurements: has no measurement named 'nope' (available: 'main', 'fixed_jes')"));
  // A workspace without any modifier has no parameters (pyhf refuses it too).
  Json bare = TwoChannel();
  for (auto& ch : bare["channels"])
    for (auto& s : ch["samples"]) s["modifiers"] = Json::array();
  bare["measurements"][0]["config"]["parameters"] = Json::array();
  CHECK(Contains(ErrorOf(bare), "a model needs at least one parameter"));
}

TEST_CASE("workspace: warnings and pyhf's lenient cases") {
  Json ws = TwoChannel();
  ws["measurements"][0]["config"]["parameters"].push_back({{"name", "unused"}, {"inits", {1.0}}});
  ws["observations"].push_back({{"name", "VR"}, {"data", {1.0}}});
  // A repeated modifier of one sample: the last one is used.
  ws["channels"][0]["samples"][0]["modifiers"].push_back(
      {{"name", "sig_theory"}, {"type", "normsys"}, {"data", {{"hi", 1.2}, {"lo", 0.8}}}});
  lepus::io::ReadInfo info;
  const Model m = ModelFromWorkspace(ws, ReadOptions{}, "ws.json", &info);
  std::string all;
  for (const auto& w : info.warnings) all += w + "\n";
  CHECK(Contains(all, "parameter 'unused' is used by no modifier"));
  CHECK(Contains(all, "observation 'VR' names no channel"));
  CHECK(Contains(all, "the last one is used"));
  const long r = Row(m, 2, "signal");
  bool seen = false;
  for (const E& e : Entries(m, r))
    if (e.syst == "sig_theory") {
      CHECK(e.up == 1.2);
      seen = true;
    }
  CHECK(seen);
  // An empty POI: no nuisance of interest.
  ws = TwoChannel();
  ws["measurements"][0]["config"]["poi"] = "";
  CHECK(ModelFromWorkspace(ws, ReadOptions{}).noi_indices.empty());
  // A staterror shared by two channels runs over both channels' bins (pyhf), in channel order.
  ws = TwoChannel();
  ws["channels"][0]["samples"][0]["modifiers"].erase(3);  // signal (SR only) drops it
  ws["channels"][1]["samples"][0]["modifiers"][3]["name"] = "staterror_SR";
  const Model s = ModelFromWorkspace(ws, ReadOptions{});
  CHECK(Col(s, "staterror_SR[4]") > Col(s, "staterror_SR[0]"));
  const long cr = Row(s, 1, "background");
  bool found = false;
  for (const E& e : Entries(s, cr)) found = found || e.syst == "staterror_SR[1]";
  CHECK(found);
  const long sr = Row(s, 2, "background");
  found = false;
  for (const E& e : Entries(s, sr)) found = found || e.syst == "staterror_SR[2]";
  CHECK(found);
  CHECK(s.constraint_weights[Col(s, "staterror_SR[2]")] == doctest::Approx(1.0 / (0.04 * 0.04)));
}

TEST_CASE("workspace: description for inspect") {
  const auto d = lepus::io::DescribeWorkspace(TwoChannel(), ReadOptions{});
  CHECK(d.measurement == "main");
  CHECK(d.poi == "mu");
  REQUIRE(d.channels.size() == 2);
  CHECK(d.channels[1].name == "SR");
  REQUIRE(d.channels[1].samples.size() == 2);
  const auto& bkg = d.channels[1].samples[0];
  CHECK(bkg.name == "background");
  CHECK(bkg.yield == 90.0);
  REQUIRE(bkg.modifiers.size() == 5);
  CHECK(bkg.modifiers[0].type == "shapesys");
  CHECK(bkg.modifiers[0].parameters ==
        std::vector<std::string>{"bkg_shape[0]", "bkg_shape[1]", "bkg_shape[2]"});
  CHECK(d.parameters.size() == 14);
  CHECK(d.parameters[1].name == "lumi");
  CHECK(d.parameters[1].constraint == "gaussian");
  CHECK(d.parameters[1].width == doctest::Approx(0.02));
  CHECK(d.parameters[6].constraint == "poisson");
  CHECK(d.parameters[6].width == doctest::Approx(100.0));
}

TEST_CASE("workspace: every value replaced or removed gives a model or an InputError") {
  // A systematic mutation sweep: each JSON value of the workspace (at every depth) is replaced by
  // values of other types and edge numbers, or removed; the reader must build a valid model or
  // throw InputError, never anything else.
  const Json base = TwoChannel();
  const Json flat = base.flatten();
  std::vector<std::string> pointers;
  for (const auto& item : flat.items()) {
    std::string p = item.key();
    while (!p.empty()) {
      pointers.push_back(p);
      p = p.substr(0, p.rfind('/'));
    }
  }
  std::sort(pointers.begin(), pointers.end());
  pointers.erase(std::unique(pointers.begin(), pointers.end()), pointers.end());
  const std::vector<Json> values = {nullptr,
                                    -1.0,
                                    0.0,
                                    1e308,
                                    -1e308,
                                    1e-320,
                                    "x",
                                    Json::array(),
                                    Json::object(),
                                    true,
                                    Json::array({1.0, 2.0}),
                                    7};
  int built = 0, refused = 0;
  for (const std::string& p : pointers) {
    std::vector<Json> variants;
    for (const Json& v : values)
      variants.push_back(base.patch(Json::array({{{"op", "replace"}, {"path", p}, {"value", v}}})));
    variants.push_back(base.patch(Json::array({{{"op", "remove"}, {"path", p}}})));
    for (const Json& ws : variants) {
      CAPTURE(p);
      try {
        const Model m = ModelFromWorkspace(ws, ReadOptions{});
        std::string error;
        CHECK(m.IsValid(&error));
        ++built;
      } catch (const InputError&) {
        ++refused;
      } catch (const std::exception& e) {
        FAIL("unexpected exception at " << p << ": " << e.what());
      }
    }
  }
  CHECK(built > 0);
  CHECK(refused > 0);
}
