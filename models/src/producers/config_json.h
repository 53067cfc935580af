// Private: typed accessors for the producers' JSON configurations (the conventions of
// docs/producers.md section 3): every key is read through a typed accessor that names the file
// and the key path in its message, unknown keys are errors with a similar-name hint, and the
// "lepus_config_version" key is required. nlohmann_json stays private to the .cc files that
// include this header. Used by wmass_config.cc and dilepton_config.cc.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "lepus/io/errors.h"
#include "lepus/io/writer.h"
#include "lepus/models/efficiency_variations.h"
#include "lepus/models/theory_variations.h"
#include "lepus/models/wmass.h"  // SampleSource

namespace lepus::models::detail {

inline std::string JsonTypeName(const nlohmann::json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "boolean";
  if (v.is_number_integer() || v.is_number_unsigned()) return "integer";
  if (v.is_number()) return "number";
  if (v.is_string()) return "string";
  if (v.is_array()) return "array";
  return "object";
}

// A value as shown in messages (at most 40 characters); non-finite numbers (which dump() would
// print as null) as inf / -inf / nan.
inline std::string JsonShown(const nlohmann::json& v) {
  if (v.is_number_float() && !std::isfinite(v.get<double>()))
    return std::isnan(v.get<double>()) ? "nan" : v.get<double>() > 0 ? "inf" : "-inf";
  std::string s = v.dump();
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}

inline std::size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> d(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) d[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t prev = d[0];
    d[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cur = d[j];
      d[j] = std::min({d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] == b[j - 1] ? 0 : 1)});
      prev = cur;
    }
  }
  return d[b.size()];
}

// Typed accessors over one JSON object; Finish() rejects keys that were never read. Errors are
// std::invalid_argument "<origin>: <key path> is <value> (<type>), but must be <constraint>".
class JsonReader {
 public:
  JsonReader(const nlohmann::json& obj, std::string origin, std::string path)
      : obj_(obj), origin_(std::move(origin)), path_(std::move(path)) {}

  [[noreturn]] void Error(const std::string& key, const nlohmann::json& v,
                          const std::string& must) const {
    throw std::invalid_argument(origin_ + ": " + Path(key) + " is " + JsonShown(v) + " (" +
                                JsonTypeName(v) + "), but must be " + must);
  }
  std::string Path(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
  const std::string& Origin() const { return origin_; }
  const nlohmann::json* Find(const std::string& key) {
    known_.insert(key);
    auto it = obj_.find(key);
    return it == obj_.end() ? nullptr : &*it;
  }
  void Int(const std::string& key, int* out, long long lo, long long hi) {
    long long v;
    if (GetInt(key, &v, lo, hi)) *out = static_cast<int>(v);
  }
  // False (out untouched) when the key is absent.
  bool GetInt(const std::string& key, long long* out, long long lo, long long hi) {
    const nlohmann::json* v = Find(key);
    if (!v) return false;
    if (!v->is_number_integer() && !v->is_number_unsigned()) Error(key, *v, "an integer");
    // An unsigned value above the signed range must not wrap to a negative one.
    const bool huge =
        v->is_number_unsigned() && v->get<std::uint64_t>() > static_cast<std::uint64_t>(hi);
    const long long x = huge ? hi : v->get<long long>();
    if (huge || x < lo || x > hi)
      Error(key, *v, "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    *out = x;
    return true;
  }
  void UInt64(const std::string& key, std::uint64_t* out) {
    const nlohmann::json* v = Find(key);
    if (!v) return;
    if (!v->is_number_unsigned() && !(v->is_number_integer() && v->get<long long>() >= 0))
      Error(key, *v, "a non-negative integer");
    *out = v->get<std::uint64_t>();
  }
  void Number(const std::string& key, double* out) {
    const nlohmann::json* v = Find(key);
    if (!v) return;
    if (!v->is_number()) Error(key, *v, "a number");
    if (!std::isfinite(v->get<double>())) Error(key, *v, kFiniteNumber);
    *out = v->get<double>();
  }
  // Every number read must be finite. (nlohmann_json already refuses 1e400 while parsing, see
  // ParseConfigObject; this also covers objects built in code.)
  static constexpr const char* kFiniteNumber = "a finite number (at most 1.8e308 in magnitude)";

  void Bool(const std::string& key, bool* out) {
    const nlohmann::json* v = Find(key);
    if (!v) return;
    if (!v->is_boolean()) Error(key, *v, "true or false");
    *out = v->get<bool>();
  }
  void String(const std::string& key, std::string* out) {
    const nlohmann::json* v = Find(key);
    if (!v) return;
    if (!v->is_string()) Error(key, *v, "a string");
    *out = v->get<std::string>();
  }
  void Numbers(const std::string& key, std::vector<double>* out) {
    const nlohmann::json* v = Find(key);
    if (!v) return;
    if (!v->is_array()) Error(key, *v, "an array of numbers");
    std::vector<double> r;
    for (std::size_t i = 0; i < v->size(); ++i) {
      if (!(*v)[i].is_number()) Error(key + "[" + std::to_string(i) + "]", (*v)[i], "a number");
      if (!std::isfinite((*v)[i].get<double>()))
        Error(key + "[" + std::to_string(i) + "]", (*v)[i], kFiniteNumber);
      r.push_back((*v)[i].get<double>());
    }
    *out = std::move(r);
  }
  void Strings(const std::string& key, std::vector<std::string>* out) {
    const nlohmann::json* v = Find(key);
    if (!v) return;
    if (!v->is_array()) Error(key, *v, "an array of strings");
    std::vector<std::string> r;
    for (std::size_t i = 0; i < v->size(); ++i) {
      if (!(*v)[i].is_string()) Error(key + "[" + std::to_string(i) + "]", (*v)[i], "a string");
      r.push_back((*v)[i].get<std::string>());
    }
    *out = std::move(r);
  }
  // A sub-object; nullptr if absent.
  std::unique_ptr<JsonReader> Object(const std::string& key) {
    const nlohmann::json* v = Find(key);
    if (!v) return nullptr;
    if (!v->is_object()) Error(key, *v, "an object");
    return std::make_unique<JsonReader>(*v, origin_, Path(key));
  }
  void Finish() const {
    for (auto it = obj_.begin(); it != obj_.end(); ++it) {
      if (known_.count(it.key())) continue;
      std::string best;
      std::size_t best_d = 3;
      for (const auto& k : known_) {
        const std::size_t d = EditDistance(it.key(), k);
        if (d < best_d) best_d = d, best = k;
      }
      std::string valid;
      for (const auto& k : known_) valid += (valid.empty() ? "" : ", ") + k;
      throw std::invalid_argument(origin_ + ": unknown key '" + Path(it.key()) + "'" +
                                  (best.empty() ? "" : " (did you mean '" + Path(best) + "'?)") +
                                  "; valid keys " + (path_.empty() ? "" : "of " + path_ + " ") +
                                  "are: " + valid);
    }
  }

 private:
  const nlohmann::json& obj_;
  std::string origin_, path_;
  std::set<std::string> known_;
};

// Parses a configuration text into a JSON object and checks "lepus_config_version" == version
// (required); throws std::invalid_argument naming the origin.
inline nlohmann::json ParseConfigObject(const std::string& text, const std::string& origin,
                                        int version, const std::string& doc) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::out_of_range& e) {
    // nlohmann_json refuses a number beyond the range of a double (1e400) while parsing.
    throw std::invalid_argument(origin +
                                ": a number is beyond the range of a double (at most "
                                "1.8e308 in magnitude): " +
                                e.what());
  } catch (const nlohmann::json::exception& e) {  // parse_error and the rest
    throw std::invalid_argument(origin + ": not valid JSON: " + e.what());
  }
  if (!j.is_object())
    throw std::invalid_argument(origin + ": the configuration must be a JSON object, but is " +
                                JsonTypeName(j));
  auto it = j.find("lepus_config_version");
  if (it == j.end())
    throw std::invalid_argument(origin +
                                ": missing key 'lepus_config_version' (this lepus reads "
                                "version " +
                                std::to_string(version) + ")");
  if (!it->is_number_integer() || it->get<long long>() != version)
    throw std::invalid_argument(origin + ": lepus_config_version is " + JsonShown(*it) +
                                ", but this lepus reads version " + std::to_string(version) +
                                " only (write the file for version " + std::to_string(version) +
                                ", see " + doc + ")");
  return j;
}

// The systematics blocks the producers share, inside their "systematics" object:
// "efficiency" (enabled, eta_group, charge_split, poly_order, num_eigen, syst, syst_eta_edges),
// "pdf" (pairs, cl_scale, symmetrize, alphas), "angular_coeffs" (pt_edges, y_edges, components,
// shower_kt), "pt_modeling" (np_per_boson_y, np_shared_cs, np_sigma2, resummation_terms) and
// "ew" (enabled). docs/producers.md lists them.
inline void ReadSharedSystematics(JsonReader* s, bool* efficiency, EfficiencyConfig* eff,
                                  TheoryConfig* theory) {
  if (auto e = s->Object("efficiency")) {
    e->Bool("enabled", efficiency);
    e->Int("eta_group", &eff->eta_group, 1, 48);
    e->Bool("charge_split", &eff->charge_split);
    e->Int("poly_order", &eff->poly_order, 0, 6);
    e->Int("num_eigen", &eff->num_eigen, 1, 7);
    e->Bool("syst", &eff->syst);
    e->Numbers("syst_eta_edges", &eff->syst_eta_edges);
    e->Finish();
  }
  if (auto p = s->Object("pdf")) {
    p->Int("pairs", &theory->pdf_pairs, 1, 60);
    p->Number("cl_scale", &theory->pdf_cl_scale);
    p->Bool("symmetrize", &theory->pdf_symmetrize);
    p->Bool("alphas", &theory->pdf_alphas);
    p->Finish();
  }
  if (auto a = s->Object("angular_coeffs")) {
    a->Numbers("pt_edges", &theory->helicity_pt_edges);
    a->Numbers("y_edges", &theory->helicity_y_edges);
    std::vector<std::string> comps;
    const bool have = a->Find("components") != nullptr;
    a->Strings("components", &comps);
    if (have) {
      theory->helicity_components.fill(false);
      for (std::size_t i = 0; i < comps.size(); ++i) {
        int k = -1;
        for (int q = 0; q < kNumHelicityComponents; ++q)
          if (comps[i] == HelicityComponentName(q)) k = q;
        if (k < 0)
          a->Error("components[" + std::to_string(i) + "]", nlohmann::json(comps[i]),
                   "one of UL, A0, A1, A2, A3, A4");
        theory->helicity_components[k] = true;
      }
    }
    a->Bool("shower_kt", &theory->shower_kt);
    a->Finish();
  }
  if (auto p = s->Object("pt_modeling")) {
    p->Bool("np_per_boson_y", &theory->np_per_boson_y);
    p->Bool("np_shared_cs", &theory->np_shared_cs);
    p->Number("np_sigma2", &theory->np_sigma2);
    p->Int("resummation_terms", &theory->resummation_terms, 0, 3);
    p->Finish();
  }
  if (auto e = s->Object("ew")) {
    e->Bool("enabled", &theory->electroweak);
    e->Finish();
  }
}

// The same blocks written into a "systematics" object (the producers' ToJson).
inline void WriteSharedSystematics(nlohmann::json* s, bool efficiency, const EfficiencyConfig& eff,
                                   const TheoryConfig& theory) {
  (*s)["efficiency"] = {{"enabled", efficiency},
                        {"eta_group", eff.eta_group},
                        {"charge_split", eff.charge_split},
                        {"poly_order", eff.poly_order},
                        {"num_eigen", eff.num_eigen},
                        {"syst", eff.syst},
                        {"syst_eta_edges", eff.syst_eta_edges}};
  (*s)["pdf"] = {{"pairs", theory.pdf_pairs},
                 {"cl_scale", theory.pdf_cl_scale},
                 {"symmetrize", theory.pdf_symmetrize},
                 {"alphas", theory.pdf_alphas}};
  std::vector<std::string> comps;
  for (int q = 0; q < kNumHelicityComponents; ++q)
    if (theory.helicity_components[q]) comps.push_back(HelicityComponentName(q));
  (*s)["angular_coeffs"] = {{"pt_edges", theory.helicity_pt_edges},
                            {"y_edges", theory.helicity_y_edges},
                            {"components", comps},
                            {"shower_kt", theory.shower_kt}};
  (*s)["pt_modeling"] = {{"np_per_boson_y", theory.np_per_boson_y},
                         {"np_shared_cs", theory.np_shared_cs},
                         {"np_sigma2", theory.np_sigma2},
                         {"resummation_terms", theory.resummation_terms}};
  (*s)["ew"] = {{"enabled", theory.electroweak}};
}

// The blocks and keys the W-mass and dilepton configurations share, read and written alike.

// "simulation" / "data": {events, seed, files} (data's own extra keys are read by the caller).
inline void ReadSampleSource(JsonReader* s, SampleSource* src, bool with_events) {
  if (with_events) s->UInt64("events", &src->events);
  s->UInt64("seed", &src->seed);
  s->Strings("files", &src->files);
}

// "systematics.mass": shift_mev, step_mev, steps, pseudodata_shifts_mev.
inline void ReadMassShifts(JsonReader* m, TheoryConfig* theory, std::vector<double>* shifts) {
  m->Number("shift_mev", &theory->mass_shift_mev);
  m->Number("step_mev", &theory->mass_step_mev);
  m->Bool("steps", &theory->mass_steps);
  m->Numbers("pseudodata_shifts_mev", shifts);
}

inline nlohmann::json MassShiftsJson(const TheoryConfig& theory,
                                     const std::vector<double>& shifts) {
  return {{"shift_mev", theory.mass_shift_mev},
          {"step_mev", theory.mass_step_mev},
          {"steps", theory.mass_steps},
          {"pseudodata_shifts_mev", shifts}};
}

// "systematics.symmetrization": one of io::Symmetrization's names.
inline void ReadSymmetrization(JsonReader* s, io::Symmetrization* sym) {
  std::string name = io::ToString(*sym);
  s->String("symmetrization", &name);
  try {
    *sym = io::SymmetrizationFromString(name);
  } catch (const std::invalid_argument&) {
    s->Error("symmetrization", nlohmann::json(name),
             "one of none, average, conservative, linear, quadratic");
  }
}

// "output": storage, sparse_density, gzip.
inline void ReadOutput(JsonReader* o, std::string* storage, double* sparse_density, bool* gzip) {
  o->String("storage", storage);
  o->Number("sparse_density", sparse_density);
  o->Bool("gzip", gzip);
}

inline nlohmann::json OutputJson(const std::string& storage, double sparse_density, bool gzip) {
  return {{"storage", storage}, {"sparse_density", sparse_density}, {"gzip", gzip}};
}

// The text of a configuration file; io::InputError naming the file when it cannot be opened.
inline std::string ReadConfigText(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw io::InputError(path + ": cannot open the configuration file");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace lepus::models::detail
