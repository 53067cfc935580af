// WMassConfig: presets, validation and the JSON schema (docs/producers.md). The JSON library is
// private to this file; every key is read through typed accessors that name the file and the key
// path in their messages, and unknown keys are errors (with a similar-name hint).
#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lepus/io/errors.h"
#include "lepus/models/wmass.h"

#include "config_checks.h"
#include "config_json.h"
#include "lepus/models/internal/validation.h"

namespace lepus::models {

using nlohmann::json;

std::string ToString(WMassPreset preset) { return preset == WMassPreset::kFull ? "full" : "light"; }

WMassPreset WMassPresetFromString(std::string_view name) {
  if (name == "light") return WMassPreset::kLight;
  if (name == "full") return WMassPreset::kFull;
  throw std::invalid_argument("unknown preset '" + std::string(name) + "' (valid: light, full)");
}

std::string ToString(WMassAnalysis analysis) {
  return analysis == WMassAnalysis::kWLike ? "wlike" : "wmass";
}

WMassAnalysis WMassAnalysisFromString(std::string_view name) {
  if (name == "wmass") return WMassAnalysis::kWMass;
  if (name == "wlike") return WMassAnalysis::kWLike;
  throw std::invalid_argument("unknown analysis '" + std::string(name) + "' (valid: wmass, wlike)");
}

WMassConfig WMassConfig::Light() {
  WMassConfig c;
  // 6 eta regions x (A, e, M): 18 momentum-scale nuisances with coherent shifts per region.
  c.muon_scale_regions = 6;
  return c;
}

WMassConfig WMassConfig::Full() {
  WMassConfig c;
  c.preset = WMassPreset::kFull;
  c.simulation.events = 20000000;
  c.luminosity_pb = 1000.0;
  c.theory = TheoryConfig::Full();
  c.efficiency_config = EfficiencyConfig::Full();
  // The seed's scale: 6 pT eigenvectors of a 5th-order scale-factor polynomial per step, eta bin
  // and charge (2880 statistical nuisances) plus the systematic ones.
  c.efficiency_config.poly_order = 5;
  c.efficiency_config.num_eigen = 6;
  // Systematic scale-factor variations decorrelated per eta bin (5 x 48) plus the correlated
  // ones; angular coefficients decorrelated in three |y| bins as well as in boson pT.
  c.efficiency_config.syst_eta_edges.clear();
  const int center = kScaleEtaBins / 2;  // eta = 0 (edges every 0.1)
  for (int b = 0; b <= kScaleEtaBins; ++b)
    c.efficiency_config.syst_eta_edges.push_back((b - center) / 10.0);
  c.theory.helicity_y_edges = {0.0, 0.8, 1.6};
  // Larger work items: the partial histograms of ~20k variations are ~80 MB, added serially
  // once per item.
  c.chunk_events = 1 << 18;
  c.muon_scale_regions = 0;
  c.nonprompt_options = NonpromptOptions::Full();
  c.nonprompt_options.smoothing_order = 3;
  c.background_norms = {0.03, 0.06, 0.16};
  return c;
}

namespace {

// The W-like changes on top of a W preset (physics reference, section 1).
WMassConfig MakeWLike(WMassConfig c) {
  c.analysis = WMassAnalysis::kWLike;
  c.pt_bins = 34;
  c.pt_max = 60.0;
  c.mt_cut = 45.0;
  c.theory.mass_boson = 'Z';
  // Two isolated prompt muons: the non-prompt background is negligible (no ABCD estimate).
  c.nonprompt = false;
  c.data_mz_shift_mev = -20.0;
  // Only the Z-like processes are generated (about 2.8 nb); the light preset keeps the
  // simulation at 4 M events and the data at 500 pb^-1 (about 0.3 M selected events).
  if (c.preset == WMassPreset::kLight) c.luminosity_pb = 500.0;
  return c;
}

}  // namespace

WMassConfig WMassConfig::WLikeLight() { return MakeWLike(Light()); }
WMassConfig WMassConfig::WLikeFull() { return MakeWLike(Full()); }

WMassConfig WMassConfig::Preset(WMassPreset preset, WMassAnalysis analysis) {
  if (analysis == WMassAnalysis::kWLike)
    return preset == WMassPreset::kFull ? WLikeFull() : WLikeLight();
  return preset == WMassPreset::kFull ? Full() : Light();
}

WMassConfig WMassConfig::Helicity(WMassPreset preset) {
  // The split multiplies every signal template and variation by the number of split processes
  // (72 light, 864 full), so both use the light systematics model; full has the reference's
  // generator binning and the statistics to populate it (docs/helicity.md).
  WMassConfig c = Light();
  c.preset = preset;
  if (preset == WMassPreset::kFull) {
    c.helicity = HelicityConfig::Reference();
    c.simulation.events = 20000000;
    c.luminosity_pb = 1000.0;
    // Large work items: a partial of the split (~1 GB) is added serially once per item.
    c.chunk_events = 1 << 19;
  } else {
    c.helicity = HelicityConfig::Light();
  }
  // A pseudo-data set with modified A0 and A4 in every cell (exactly representable).
  HelicityPseudoData p;
  p.name = "helicity_A0x1p2_A4x0p9";
  p.scale = {1.0, 1.2, 1.0, 1.0, 1.0, 0.9};
  c.helicity.pseudodata = {p};
  return c;
}

namespace {

using detail::Fail;
using detail::Num;

}  // namespace

bool WMassConfig::IsValid(std::string* error) const {
  if (eta_bins <= 0 || kScaleEtaBins % eta_bins != 0)
    return Fail(error, "eta_bins is " + std::to_string(eta_bins) +
                           ", but must divide 48 (the calibration and efficiency eta binning)");
  if (pt_bins <= 0)
    return Fail(error, "pt_bins is " + std::to_string(pt_bins) + ", but must be > 0");
  if (!(pt_min > 0) || !(pt_max > pt_min))
    return Fail(error, "pt_min, pt_max are " + Num(pt_min) + ", " + Num(pt_max) +
                           ", but must satisfy 0 < pt_min < pt_max");
  if (!(iso_cut > 0)) return Fail(error, "iso_cut is " + Num(iso_cut) + ", but must be > 0");
  if (!(mt_sideband > 0) || !(mt_cut > mt_sideband))
    return Fail(error, "mt_sideband, mt_cut are " + Num(mt_sideband) + ", " + Num(mt_cut) +
                           ", but must satisfy 0 < mt_sideband < mt_cut");
  if (!(veto_pt >= 0)) return Fail(error, "veto_pt is " + Num(veto_pt) + ", but must be >= 0");
  if (!simulation.from_files() && simulation.events == 0)
    return Fail(error,
                "simulation.events is 0, but must be > 0 when no simulation files are given");
  if (!(luminosity_pb > 0) || !std::isfinite(luminosity_pb))
    return Fail(error, "luminosity_pb is " + Num(luminosity_pb) + ", but must be > 0");
  if (!std::isfinite(data_mw_shift_mev) || std::abs(data_mw_shift_mev) > 2000)
    return Fail(error, "data.mw_shift_mev is " + Num(data_mw_shift_mev) +
                           ", but must be within +-2000 MeV");
  if (!std::isfinite(data_mw_charge_diff_mev) || std::abs(data_mw_charge_diff_mev) > 2000)
    return Fail(error, "data.mw_charge_diff_mev is " + Num(data_mw_charge_diff_mev) +
                           ", but must be within +-2000 MeV");
  if (!std::isfinite(data_mz_shift_mev) || std::abs(data_mz_shift_mev) > 2000)
    return Fail(error, "data.mz_shift_mev is " + Num(data_mz_shift_mev) +
                           ", but must be within +-2000 MeV");
  const bool wlike = analysis == WMassAnalysis::kWLike;
  if (wlike && (!(mll_min > 0) || !(mll_max > mll_min) || !std::isfinite(mll_max)))
    return Fail(error, "selection.mll_min, mll_max are " + Num(mll_min) + ", " + Num(mll_max) +
                           ", but must satisfy 0 < mll_min < mll_max");
  if (wlike && nonprompt)
    return Fail(error,
                "nonprompt.enabled is true, but must be false for the W-like analysis "
                "(two isolated muons: no non-prompt estimate)");
  std::string sub;
  if (!theory.IsValid(&sub)) return Fail(error, "theory: " + sub);
  const char boson = wlike ? 'Z' : 'W';
  if (theory.mass_boson != boson)
    return Fail(error, std::string("theory.mass_boson is '") + theory.mass_boson +
                           "', but must be '" + boson + "' for the " +
                           (wlike ? "W-like" : "W-mass") + " producer");
  if (!mass_split.IsValid(&sub)) return Fail(error, sub);
  if (mass_center_mev != 0.0 &&
      (!std::isfinite(mass_center_mev) ||
       !(std::abs(mass_center_mev - SimulationMassMev()) <= kMaxMassCenterShiftMev)))
    return Fail(error, "mass.center_mev is " + Num(mass_center_mev) + ", but must be within " +
                           Num(kMaxMassCenterShiftMev) + " MeV of the simulation's m_" + boson +
                           " (" + Num(SimulationMassMev()) + " MeV)");
  if (efficiency && !efficiency_config.IsValid(&sub)) return Fail(error, "efficiency: " + sub);
  if (!detail::ValidMuonScale(muon_scale_stat, muon_scale_regions, error)) return false;
  if (nonprompt && !nonprompt_options.IsValid(&sub)) return Fail(error, "nonprompt: " + sub);
  if (helicity.enabled && !helicity.IsValid(&sub)) return Fail(error, sub);
  if (helicity.enabled && (analysis != WMassAnalysis::kWMass || mass_split.active()))
    return Fail(error,
                "helicity is enabled, but the helicity fit is a mode of the W-mass "
                "analysis without a split mass parameter");
  for (const auto& [key, size] :
       {std::pair<const char*, double>{"systematics.background_norms.Z", background_norms.z},
        {"systematics.background_norms.top", background_norms.top},
        {"systematics.background_norms.diboson", background_norms.diboson}})
    if (!(size >= 0) || size >= 1)
      return Fail(error, key + (" is " + Num(size)) + ", but must be in [0, 1)");
  if (!detail::ValidLuminosityUncertainty(lumi_uncertainty, "luminosity uncertainty", error))
    return false;
  if (!detail::ValidPseudoDataShifts(pseudodata_shifts_mev, theory, "pseudodata_shifts_mev", error))
    return false;
  if (!detail::ValidOutput(storage, sparse_density, chunk_events, error)) return false;
  return true;
}

// ---- JSON

namespace {

using Reader = detail::JsonReader;

const char* kCoefficientNames[8] = {"A0", "A1", "A2", "A3", "A4", "A5", "A6", "A7"};

// The "helicity" object (docs/helicity.md).
void ReadHelicity(Reader* h, HelicityConfig* c) {
  h->Numbers("pt_edges", &c->pt_edges);
  h->Numbers("y_edges", &c->y_edges);
  h->Bool("free", &c->free);
  h->Number("prior_width", &c->prior_width);
  if (auto a = h->Object("data_a_scale")) {
    for (int i = 0; i < 8; ++i) a->Number(kCoefficientNames[i], &c->data_a_scale[i]);
    a->Finish();
  }
  if (const json* v = h->Find("pseudodata")) {
    if (!v->is_array()) h->Error("pseudodata", *v, "an array of objects");
    c->pseudodata.clear();
    for (std::size_t k = 0; k < v->size(); ++k) {
      const std::string key = "pseudodata[" + std::to_string(k) + "]";
      if (!(*v)[k].is_object()) h->Error(key, (*v)[k], "an object");
      Reader p((*v)[k], h->Origin(), h->Path(key));
      HelicityPseudoData d;
      p.String("name", &d.name);
      p.Int("pt_bin", &d.pt_bin, -1, 1000);
      p.Int("y_bin", &d.y_bin, -1, 1000);
      p.Int("charge", &d.charge, -1, 1);
      if (auto s = p.Object("scale")) {
        for (int q = 0; q < kNumHelicityComponents; ++q)
          s->Number(HelicityComponentName(q), &d.scale[q]);
        s->Finish();
      }
      p.Finish();
      c->pseudodata.push_back(d);
    }
  }
  h->Finish();
}

json HelicityJson(const HelicityConfig& c) {
  json a = json::object();
  for (int i = 0; i < 8; ++i) a[kCoefficientNames[i]] = c.data_a_scale[i];
  json pd = json::array();
  for (const auto& p : c.pseudodata) {
    json s = json::object();
    for (int q = 0; q < kNumHelicityComponents; ++q) s[HelicityComponentName(q)] = p.scale[q];
    pd.push_back({{"name", p.name},
                  {"pt_bin", p.pt_bin},
                  {"y_bin", p.y_bin},
                  {"charge", p.charge},
                  {"scale", s}});
  }
  return {{"pt_edges", c.pt_edges},       {"y_edges", c.y_edges}, {"free", c.free},
          {"prior_width", c.prior_width}, {"data_a_scale", a},    {"pseudodata", pd}};
}

}  // namespace

WMassConfig WMassConfigFromJson(const std::string& json_text, const std::string& origin,
                                WMassAnalysis analysis) {
  const json j =
      detail::ParseConfigObject(json_text, origin, kWMassConfigVersion, "docs/producers.md");
  Reader r(j, origin, "");
  r.Find("lepus_config_version");  // checked by ParseConfigObject
  std::string producer = ToString(analysis);
  r.String("producer", &producer);
  // The helicity fit is a mode of the W-mass analysis (helicity.h).
  const bool helicity = producer == "helicity" && analysis == WMassAnalysis::kWMass;
  if (producer != ToString(analysis) && !helicity)
    r.Error("producer", json(producer),
            "\"" + ToString(analysis) + "\" (the producer of this command)" +
                (analysis == WMassAnalysis::kWMass ? " or \"helicity\"" : ""));
  std::string preset = "light";
  r.String("preset", &preset);
  WMassConfig c;
  try {
    c = helicity ? WMassConfig::Helicity(WMassPresetFromString(preset))
                 : WMassConfig::Preset(WMassPresetFromString(preset), analysis);
  } catch (const std::invalid_argument&) {
    r.Error("preset", json(preset), "\"light\" or \"full\"");
  }

  if (auto b = r.Object("binning")) {
    b->Int("eta_bins", &c.eta_bins, 1, 48);
    b->Int("pt_bins", &c.pt_bins, 1, 10000);
    b->Number("pt_min", &c.pt_min);
    b->Number("pt_max", &c.pt_max);
    b->Finish();
  }
  if (auto s = r.Object("selection")) {
    s->Number("iso_cut", &c.iso_cut);
    s->Number("mt_cut", &c.mt_cut);
    s->Number("mt_sideband", &c.mt_sideband);
    s->Number("veto_pt", &c.veto_pt);
    s->Number("mll_min", &c.mll_min);
    s->Number("mll_max", &c.mll_max);
    s->Bool("flip_parity", &c.flip_parity);
    s->Finish();
  }
  if (auto s = r.Object("simulation")) {
    detail::ReadSampleSource(s.get(), &c.simulation, true);
    s->Finish();
  }
  if (auto s = r.Object("data")) {
    detail::ReadSampleSource(s.get(), &c.data, false);
    s->Number("mw_shift_mev", &c.data_mw_shift_mev);
    s->Number("mw_charge_diff_mev", &c.data_mw_charge_diff_mev);
    s->Number("mz_shift_mev", &c.data_mz_shift_mev);
    s->Bool("scale_bias", &c.data_scale_bias);
    s->Bool("efficiency_bias", &c.data_efficiency_bias);
    s->Finish();
  }
  r.Number("luminosity_pb", &c.luminosity_pb);
  if (auto s = r.Object("systematics")) {
    if (auto m = s->Object("mass")) {
      detail::ReadMassShifts(m.get(), &c.theory, &c.pseudodata_shifts_mev);
      {
        // An absolute mass (MeV); the range is checked by IsValid. 0 is no mass: refused here
        // (internally it stands for the simulation's mass, which --print-config writes out).
        double center = std::numeric_limits<double>::quiet_NaN();
        m->Number("center_mev", &center);
        if (!std::isnan(center)) {
          if (!(center > 0))
            m->Error(
                "center_mev", json(center),
                "a mass in MeV within " + Num(kMaxMassCenterShiftMev) + " MeV of the simulation's");
          c.mass_center_mev = center;
        }
      }
      std::string split = c.mass_split.Spec();
      m->String("split", &split);
      {
        const MassSplitMode mode = c.mass_split.mode;
        c.mass_split = MassSplitConfig::FromSpec(split, origin + ": " + m->Path("split"));
        c.mass_split.mode = mode;
      }
      std::string mode = ToString(c.mass_split.mode);
      m->String("split_mode", &mode);
      if (mode != "separate" && mode != "difference")
        m->Error("split_mode", json(mode), "\"separate\" or \"difference\"");
      c.mass_split.mode = MassSplitModeFromString(mode);
      m->Finish();
    }
    if (auto w = s->Object("width")) {
      // The width of the boson whose mass is fitted (W, or Z for the W-like fit).
      w->Number("shift_mev", c.analysis == WMassAnalysis::kWLike ? &c.theory.z_width_shift_mev
                                                                 : &c.theory.w_width_shift_mev);
      w->Finish();
    }
    if (auto m = s->Object("muon_scale")) {
      m->Bool("enabled", &c.muon_scale);
      m->Number("stat_scale", &c.muon_scale_stat);
      m->String("calibration", &c.calibration_file);
      m->Int("regions", &c.muon_scale_regions, 0, 1000);
      m->Finish();
    }
    detail::ReadSharedSystematics(s.get(), &c.efficiency, &c.efficiency_config, &c.theory);
    if (auto n = s->Object("nonprompt")) {
      n->Bool("enabled", &c.nonprompt);
      n->Int("smoothing_order", &c.nonprompt_options.smoothing_order, -1, 5);
      std::string dec = c.nonprompt_options.decorrelation == SmoothingDecorrelation::kCorrelated
                            ? "correlated"
                            : "per_eta_charge";
      n->String("decorrelation", &dec);
      if (dec == "correlated") {
        c.nonprompt_options.decorrelation = SmoothingDecorrelation::kCorrelated;
      } else if (dec == "per_eta_charge") {
        c.nonprompt_options.decorrelation = SmoothingDecorrelation::kPerEtaCharge;
      } else {
        n->Error("decorrelation", json(dec), "\"per_eta_charge\" or \"correlated\"");
      }
      n->Number("norm_uncertainty", &c.nonprompt_options.norm_uncertainty);
      n->Number("shape_pt", &c.nonprompt_options.shape_pt);
      n->Number("shape_eta", &c.nonprompt_options.shape_eta);
      n->Bool("shape_per_charge", &c.nonprompt_options.shape_per_charge);
      n->Finish();
    }
    if (auto n = s->Object("background_norms")) {
      n->Number("Z", &c.background_norms.z);
      n->Number("top", &c.background_norms.top);
      n->Number("diboson", &c.background_norms.diboson);
      n->Finish();
    }
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
  if (auto hx = r.Object("helicity")) {
    if (producer != "helicity")
      throw std::invalid_argument(origin + ": helicity is given, but the producer is \"" +
                                  producer + "\" (the key needs \"producer\": \"helicity\")");
    ReadHelicity(hx.get(), &c.helicity);
  }
  r.Finish();

  std::string error;
  if (!c.IsValid(&error)) throw std::invalid_argument(origin + ": " + error);
  return c;
}

WMassConfig ReadWMassConfig(const std::string& path, WMassAnalysis analysis) {
  return WMassConfigFromJson(detail::ReadConfigText(path), path, analysis);
}

double WMassConfig::SimulationMassMev() const {
  const GeneratorParams& p = theory.physics;
  return 1e3 * (analysis == WMassAnalysis::kWLike ? p.z_mass : p.w_mass);
}

double WMassConfig::MassCenterMev() const {
  return MassCenterShiftMev() == 0.0 ? SimulationMassMev() : mass_center_mev;
}

double WMassConfig::MassCenterShiftMev() const {
  if (mass_center_mev == 0.0) return 0.0;
  const double d = mass_center_mev - SimulationMassMev();
  // The simulation's mass written out in MeV (--print-config) and read back differs from it in
  // the last bits: the same centre, and the default fit input.
  return std::abs(d) < 1e-6 ? 0.0 : d;
}

std::string WMassSummary::MetadataJson() const {
  if (mass_center_mev == simulation_mass_mev) return "";
  json j;
  j["producer_metadata_version"] = 1;
  j["noi"] = noi;
  j["mass_center_mev"] = mass_center_mev;
  j["simulation_mass_mev"] = simulation_mass_mev;
  j["noi_measures"] = noi + " x scale = m - mass_center_mev (MeV)";
  json att = json::array();
  for (const MassAttenuation& a : attenuation) {
    json e;
    e["parameter"] = a.parameter;
    e["determined"] = a.determined;
    if (a.determined) {
      e["r"] = a.r;
      e["slope"] = a.slope;
    }
    att.push_back(e);
  }
  j["attenuation"] = att;
  return j.dump();
}

std::string WMassConfig::ToJson() const {
  json j;
  j["lepus_config_version"] = kWMassConfigVersion;
  j["producer"] = ToString(analysis);
  j["preset"] = ToString(preset);
  j["binning"] = {
      {"eta_bins", eta_bins}, {"pt_bins", pt_bins}, {"pt_min", pt_min}, {"pt_max", pt_max}};
  j["selection"] = {{"iso_cut", iso_cut},        {"mt_cut", mt_cut},   {"mt_sideband", mt_sideband},
                    {"veto_pt", veto_pt},        {"mll_min", mll_min}, {"mll_max", mll_max},
                    {"flip_parity", flip_parity}};
  j["simulation"] = {
      {"events", simulation.events}, {"seed", simulation.seed}, {"files", simulation.files}};
  j["data"] = {{"seed", data.seed},
               {"files", data.files},
               {"mw_shift_mev", data_mw_shift_mev},
               {"mw_charge_diff_mev", data_mw_charge_diff_mev},
               {"mz_shift_mev", data_mz_shift_mev},
               {"scale_bias", data_scale_bias},
               {"efficiency_bias", data_efficiency_bias}};
  j["luminosity_pb"] = luminosity_pb;
  json s;
  s["mass"] = detail::MassShiftsJson(theory, pseudodata_shifts_mev);
  s["mass"]["center_mev"] = MassCenterMev();
  s["mass"]["split"] = mass_split.Spec();
  s["mass"]["split_mode"] = ToString(mass_split.mode);
  s["width"] = {{"shift_mev", analysis == WMassAnalysis::kWLike ? theory.z_width_shift_mev
                                                                : theory.w_width_shift_mev}};
  s["muon_scale"] = {{"enabled", muon_scale},
                     {"stat_scale", muon_scale_stat},
                     {"calibration", calibration_file},
                     {"regions", muon_scale_regions}};
  detail::WriteSharedSystematics(&s, efficiency, efficiency_config, theory);
  s["nonprompt"] = {
      {"enabled", nonprompt},
      {"smoothing_order", nonprompt_options.smoothing_order},
      {"decorrelation", nonprompt_options.decorrelation == SmoothingDecorrelation::kCorrelated
                            ? "correlated"
                            : "per_eta_charge"},
      {"norm_uncertainty", nonprompt_options.norm_uncertainty},
      {"shape_pt", nonprompt_options.shape_pt},
      {"shape_eta", nonprompt_options.shape_eta},
      {"shape_per_charge", nonprompt_options.shape_per_charge}};
  s["background_norms"] = {{"Z", background_norms.z},
                           {"top", background_norms.top},
                           {"diboson", background_norms.diboson}};
  s["luminosity"] = lumi_uncertainty;
  s["bin_by_bin_stat"] = bin_by_bin_stat;
  s["symmetrization"] = io::ToString(symmetrization);
  j["systematics"] = s;
  j["output"] = detail::OutputJson(storage, sparse_density, gzip);
  j["chunk_events"] = chunk_events;
  if (helicity.enabled) {
    j["producer"] = "helicity";
    j["helicity"] = HelicityJson(helicity);
  }
  return j.dump(1);
}

}  // namespace lepus::models
