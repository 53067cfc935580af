// DileptonConfig: presets, validation and the JSON schema (docs/dilepton.md). The JSON library
// is private to the .cc files; keys are read through the typed accessors of config_json.h.
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config_checks.h"
#include "config_json.h"
#include "lepus/io/errors.h"
#include "lepus/models/dilepton.h"
#include "lepus/models/internal/validation.h"

namespace lepus::models {

using nlohmann::json;

std::string ToString(DileptonPreset preset) {
  return preset == DileptonPreset::kFull ? "full" : "light";
}

DileptonPreset DileptonPresetFromString(std::string_view name) {
  if (name == "light") return DileptonPreset::kLight;
  if (name == "full") return DileptonPreset::kFull;
  throw std::invalid_argument("unknown preset '" + std::string(name) + "' (valid: light, full)");
}

namespace {

// Edges from `from` in steps of `step` up to (and including) `to`.
void AppendSteps(std::vector<double>* edges, double from, double to, double step) {
  const int n = static_cast<int>(std::lround((to - from) / step));
  for (int i = edges->empty() || edges->back() < from - 1e-9 ? 0 : 1; i <= n; ++i)
    edges->push_back(from + i * step);
}

}  // namespace

TheoryConfig DileptonLightTheory() {
  TheoryConfig t = TheoryConfig::Light();
  t.mass_boson = 'Z';
  return t;
}

DileptonConfig DileptonConfig::Light() { return DileptonConfig{}; }

DileptonConfig DileptonConfig::Full() {
  DileptonConfig c = Light();
  c.preset = DileptonPreset::kFull;
  // 58 mass bins: 0.5 GeV in 81-101 GeV, 1 GeV in 76-81 and 101-106 GeV, wider in the tails.
  c.mass_edges = {60, 65, 70, 73};
  AppendSteps(&c.mass_edges, 76, 81, 1.0);
  AppendSteps(&c.mass_edges, 81, 101, 0.5);
  AppendSteps(&c.mass_edges, 101, 106, 1.0);
  for (double e : {109.0, 112.0, 116.0, 120.0}) c.mass_edges.push_back(e);
  c.eta_bins = 48;
  c.simulation.events = 20000000;
  c.luminosity_pb = 1000.0;
  c.theory = TheoryConfig::Full();
  c.theory.mass_boson = 'Z';
  c.theory.mass_steps = false;  // the 10 MeV step templates only for requested pseudo-data
  c.theory.helicity_y_edges = {0.0, 0.8, 1.6};
  // Every variation spans the whole channel (the forward muon can be anywhere above the varied
  // one), so the efficiency eigenvectors are grouped in 0.4 eta: 5 steps x 12 x 2 charges x 4.
  c.efficiency_config = EfficiencyConfig::Full();
  c.efficiency_config.eta_group = 4;
  c.muon_scale_regions = 0;  // the calibration's own bins (144 nuisances for the built-in one)
  c.chunk_events = 1 << 18;
  return c;
}

DileptonConfig DileptonConfig::Preset(DileptonPreset preset) {
  return preset == DileptonPreset::kFull ? Full() : Light();
}

namespace {

using detail::Fail;
using detail::Num;

}  // namespace

bool DileptonConfig::IsValid(std::string* error) const {
  if (mass_edges.size() < 2)
    return Fail(error, "binning.mass_edges has " + std::to_string(mass_edges.size()) +
                           " entries, but must have at least 2");
  for (std::size_t i = 0; i < mass_edges.size(); ++i) {
    if (!std::isfinite(mass_edges[i]) || !(mass_edges[i] > 0))
      return Fail(error, "binning.mass_edges[" + std::to_string(i) + "] is " + Num(mass_edges[i]) +
                             ", but must be > 0 (GeV)");
    if (i > 0 && !(mass_edges[i] > mass_edges[i - 1]))
      return Fail(error, "binning.mass_edges[" + std::to_string(i) + "] is " + Num(mass_edges[i]) +
                             ", but must be > binning.mass_edges[" + std::to_string(i - 1) + "] (" +
                             Num(mass_edges[i - 1]) + ")");
  }
  if (eta_bins <= 0 || kScaleEtaBins % eta_bins != 0)
    return Fail(error, "binning.eta_bins is " + std::to_string(eta_bins) +
                           ", but must divide 48 (the calibration and efficiency eta binning)");
  if (!(pt_min > 0) || !std::isfinite(pt_min))
    return Fail(error, "selection.pt_min is " + Num(pt_min) + ", but must be > 0");
  if (!(iso_cut > 0))
    return Fail(error, "selection.iso_cut is " + Num(iso_cut) + ", but must be > 0");
  if (!simulation.from_files() && simulation.events == 0)
    return Fail(error,
                "simulation.events is 0, but must be > 0 when no simulation files are given");
  if (!(luminosity_pb > 0) || !std::isfinite(luminosity_pb))
    return Fail(error, "luminosity_pb is " + Num(luminosity_pb) + ", but must be > 0");
  if (!std::isfinite(data_mz_shift_mev) || std::abs(data_mz_shift_mev) > 2000)
    return Fail(error, "data.mz_shift_mev is " + Num(data_mz_shift_mev) +
                           ", but must be within +-2000 MeV");
  std::string sub;
  if (!theory.IsValid(&sub)) return Fail(error, "theory: " + sub);
  if (theory.mass_boson != 'Z')
    return Fail(error, std::string("theory.mass_boson is '") + theory.mass_boson +
                           "', but must be 'Z' for the dilepton producer");
  if (efficiency && !efficiency_config.IsValid(&sub)) return Fail(error, "efficiency: " + sub);
  if (!detail::ValidMuonScale(muon_scale_stat, muon_scale_regions, error)) return false;
  if (!detail::ValidLuminosityUncertainty(lumi_uncertainty, "systematics.luminosity", error))
    return false;
  if (!detail::ValidPseudoDataShifts(pseudodata_shifts_mev, theory, "mass.pseudodata_shifts_mev",
                                     error))
    return false;
  if (!detail::ValidOutput(storage, sparse_density, chunk_events, error)) return false;
  return true;
}

// ---- JSON

namespace {}  // namespace

DileptonConfig DileptonConfigFromJson(const std::string& json_text, const std::string& origin) {
  const json j =
      detail::ParseConfigObject(json_text, origin, kDileptonConfigVersion, "docs/dilepton.md");
  detail::JsonReader r(j, origin, "");
  r.Find("lepus_config_version");  // checked by ParseConfigObject
  {
    std::string producer = "dilepton";
    r.String("producer", &producer);
    if (producer != "dilepton")
      r.Error("producer", json(producer), "\"dilepton\" (the producer of this command)");
  }
  std::string preset = "light";
  r.String("preset", &preset);
  DileptonConfig c;
  try {
    c = DileptonConfig::Preset(DileptonPresetFromString(preset));
  } catch (const std::invalid_argument&) {
    r.Error("preset", json(preset), "\"light\" or \"full\"");
  }

  if (auto b = r.Object("binning")) {
    b->Numbers("mass_edges", &c.mass_edges);
    b->Int("eta_bins", &c.eta_bins, 1, 48);
    b->Finish();
  }
  if (auto s = r.Object("selection")) {
    s->Number("pt_min", &c.pt_min);
    s->Number("iso_cut", &c.iso_cut);
    s->Finish();
  }
  if (auto s = r.Object("simulation")) {
    detail::ReadSampleSource(s.get(), &c.simulation, true);
    s->Finish();
  }
  if (auto s = r.Object("data")) {
    detail::ReadSampleSource(s.get(), &c.data, false);
    s->Number("mz_shift_mev", &c.data_mz_shift_mev);
    s->Bool("scale_bias", &c.data_scale_bias);
    s->Bool("efficiency_bias", &c.data_efficiency_bias);
    s->Finish();
  }
  r.Number("luminosity_pb", &c.luminosity_pb);
  if (auto s = r.Object("systematics")) {
    if (auto m = s->Object("mass")) {
      detail::ReadMassShifts(m.get(), &c.theory, &c.pseudodata_shifts_mev);
      m->Finish();
    }
    if (auto w = s->Object("width")) {
      w->Number("shift_mev", &c.theory.z_width_shift_mev);
      w->Finish();
    }
    if (auto m = s->Object("muon_scale")) {
      m->Bool("enabled", &c.muon_scale);
      m->Number("stat_scale", &c.muon_scale_stat);
      m->String("calibration", &c.calibration_file);
      m->Int("regions", &c.muon_scale_regions, 0, 1000);
      m->Bool("closure", &c.muon_closure);
      m->Bool("resolution", &c.muon_resolution);
      m->Finish();
    }
    detail::ReadSharedSystematics(s.get(), &c.efficiency, &c.efficiency_config, &c.theory);
    s->Number("luminosity", &c.lumi_uncertainty);
    s->Bool("bin_by_bin_stat", &c.bin_by_bin_stat);
    detail::ReadSymmetrization(s.get(), &c.symmetrization);
    s->Finish();
  }
  if (auto o = r.Object("output")) {
    detail::ReadOutput(o.get(), &c.storage, &c.sparse_density, &c.gzip);
    o->Finish();
  }
  r.UInt64("chunk_events", &c.chunk_events);
  r.Finish();

  std::string error;
  if (!c.IsValid(&error)) throw std::invalid_argument(origin + ": " + error);
  return c;
}

DileptonConfig ReadDileptonConfig(const std::string& path) {
  return DileptonConfigFromJson(detail::ReadConfigText(path), path);
}

std::string DileptonConfig::ToJson() const {
  json j;
  j["lepus_config_version"] = kDileptonConfigVersion;
  j["producer"] = "dilepton";
  j["preset"] = ToString(preset);
  j["binning"] = {{"mass_edges", mass_edges}, {"eta_bins", eta_bins}};
  j["selection"] = {{"pt_min", pt_min}, {"iso_cut", iso_cut}};
  j["simulation"] = {
      {"events", simulation.events}, {"seed", simulation.seed}, {"files", simulation.files}};
  j["data"] = {{"seed", data.seed},
               {"files", data.files},
               {"mz_shift_mev", data_mz_shift_mev},
               {"scale_bias", data_scale_bias},
               {"efficiency_bias", data_efficiency_bias}};
  j["luminosity_pb"] = luminosity_pb;
  json s;
  s["mass"] = detail::MassShiftsJson(theory, pseudodata_shifts_mev);
  s["width"] = {{"shift_mev", theory.z_width_shift_mev}};
  s["muon_scale"] = {{"enabled", muon_scale},           {"stat_scale", muon_scale_stat},
                     {"calibration", calibration_file}, {"regions", muon_scale_regions},
                     {"closure", muon_closure},         {"resolution", muon_resolution}};
  detail::WriteSharedSystematics(&s, efficiency, efficiency_config, theory);
  s["luminosity"] = lumi_uncertainty;
  s["bin_by_bin_stat"] = bin_by_bin_stat;
  s["symmetrization"] = io::ToString(symmetrization);
  j["systematics"] = s;
  j["output"] = detail::OutputJson(storage, sparse_density, gzip);
  j["chunk_events"] = chunk_events;
  return j.dump(1);
}

}  // namespace lepus::models
