// The momentum calibration parameter set: validation, the synthetic default, the JSON file
// (docs/calibration.md) and the eigen-decomposition into momentum-scale nuisances.
#include "lepus/models/calibration.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "lepus/io/errors.h"
#include "lepus/io/output.h"

namespace lepus::models {

namespace {

using nlohmann::json;

constexpr const char* kSchemaName = "lepus-muon-calibration";
constexpr const char* kConvention =
    "dk/k = A - e/pT + q M pT with k = 1/pT (unsigned); k_meas = k_true (1 + dk/k); "
    "parameters are the bias of data relative to simulation; covariance order (A_0, e_0, M_0, "
    "A_1, ...); units: A 1, e GeV, M 1/GeV";

std::string Num(double v) {
  std::ostringstream os;
  os.precision(17);
  os << v;
  return os.str();
}

std::vector<double> DefaultEdges() {
  std::vector<double> e(kScaleEtaBins + 1);
  for (int i = 0; i <= kScaleEtaBins; ++i)
    e[i] = kScaleEtaMin + (kScaleEtaMax - kScaleEtaMin) * i / kScaleEtaBins;
  return e;
}

bool IsDefaultBinning(const std::vector<double>& edges) {
  if (edges.size() != kScaleEtaBins + 1) return false;
  const std::vector<double> d = DefaultEdges();
  for (std::size_t i = 0; i < edges.size(); ++i)
    if (std::abs(edges[i] - d[i]) > 1e-9) return false;
  return true;
}

double Get(const ScaleBias& b, int p) { return p == 0 ? b.A : (p == 1 ? b.e : b.M); }
void Set(ScaleBias& b, int p, double v) { (p == 0 ? b.A : (p == 1 ? b.e : b.M)) = v; }

}  // namespace

// ---- CalibrationParameters

int CalibrationParameters::Bin(double eta) const noexcept {
  const int n = num_bins();
  const auto it = std::upper_bound(eta_edges.begin(), eta_edges.end(), eta);
  const int b = static_cast<int>(it - eta_edges.begin()) - 1;
  return std::clamp(b, 0, n - 1);
}

double CalibrationParameters::CurvatureShift(double eta, double pt, int charge) const noexcept {
  return models::CurvatureShift(params[Bin(eta)], pt, charge);
}

double CalibrationParameters::CorrectPt(double eta, double pt, int charge) const noexcept {
  return pt * (1.0 + CurvatureShift(eta, pt, charge));
}

ScaleTable CalibrationParameters::ToScaleTable() const {
  if (!IsDefaultBinning(eta_edges) || num_bins() != kScaleEtaBins)
    throw std::invalid_argument(
        "CalibrationParameters::ToScaleTable: the binning is not the default 48 bins in "
        "[-2.4, 2.4]");
  ScaleTable t{};
  std::copy(params.begin(), params.end(), t.begin());
  return t;
}

double CalibrationParameters::Uncertainty(int bin, int p) const {
  if (bin < 0 || bin >= num_bins() || p < 0 || p > 2)
    throw std::invalid_argument("CalibrationParameters::Uncertainty: (bin, p) is (" +
                                std::to_string(bin) + ", " + std::to_string(p) +
                                "), but must be in [0, num_bins) x [0, 3)");
  const int i = kCalibrationParamsPerBin * bin + p;
  return std::sqrt(std::max(0.0, covariance(i, i)));
}

bool CalibrationParameters::IsValid(std::string* error) const {
  auto fail = [&](const std::string& what) {
    if (error) *error = "calibration: " + what;
    return false;
  };
  if (schema_version < kCalibrationMinSchemaVersion || schema_version > kCalibrationSchemaVersion)
    return fail("schema_version is " + std::to_string(schema_version) + ", but must be in [" +
                std::to_string(kCalibrationMinSchemaVersion) + ", " +
                std::to_string(kCalibrationSchemaVersion) + "]");
  const int n = num_bins();
  if (n < 1) return fail("the number of eta bins is 0, but must be >= 1");
  if (static_cast<int>(eta_edges.size()) != n + 1)
    return fail("eta_edges has " + std::to_string(eta_edges.size()) +
                " entries, but must have num_bins + 1 = " + std::to_string(n + 1));
  for (std::size_t i = 0; i < eta_edges.size(); ++i) {
    if (!std::isfinite(eta_edges[i]))
      return fail("eta_edges[" + std::to_string(i) + "] is " + Num(eta_edges[i]) +
                  ", but must be finite");
    if (i > 0 && !(eta_edges[i] > eta_edges[i - 1]))
      return fail("eta_edges[" + std::to_string(i) + "] is " + Num(eta_edges[i]) +
                  ", but must be > eta_edges[" + std::to_string(i - 1) +
                  "] = " + Num(eta_edges[i - 1]));
  }
  const char* names[3] = {"A", "e", "M"};
  for (int b = 0; b < n; ++b)
    for (int p = 0; p < 3; ++p)
      if (!std::isfinite(Get(params[b], p)))
        return fail(std::string(names[p]) + "[" + std::to_string(b) + "] is " +
                    Num(Get(params[b], p)) + ", but must be finite");
  const int dim = kCalibrationParamsPerBin * n;
  if (covariance.rows() != dim || covariance.cols() != dim)
    return fail("covariance is " + std::to_string(covariance.rows()) + "x" +
                std::to_string(covariance.cols()) + ", but must be " + std::to_string(dim) + "x" +
                std::to_string(dim));
  for (int i = 0; i < dim; ++i) {
    if (!(covariance(i, i) >= 0.0) || !std::isfinite(covariance(i, i)))
      return fail("covariance[" + std::to_string(i) + "][" + std::to_string(i) + "] is " +
                  Num(covariance(i, i)) + ", but must be finite and >= 0");
    for (int j = 0; j < i; ++j) {
      const double a = covariance(i, j), b = covariance(j, i);
      if (!std::isfinite(a))
        return fail("covariance[" + std::to_string(i) + "][" + std::to_string(j) + "] is " +
                    Num(a) + ", but must be finite");
      const double tol = 1e-9 * std::sqrt(covariance(i, i) * covariance(j, j)) + 1e-300;
      if (std::abs(a - b) > tol)
        return fail("covariance[" + std::to_string(i) + "][" + std::to_string(j) + "] is " +
                    Num(a) + ", but must equal covariance[" + std::to_string(j) + "][" +
                    std::to_string(i) + "] = " + Num(b) + " (symmetric)");
    }
  }
  if (!closure.per_bin.empty()) {
    if (static_cast<int>(closure.per_bin.size()) != n)
      return fail("closure has " + std::to_string(closure.per_bin.size()) +
                  " bins, but must have num_bins = " + std::to_string(n) + " or none");
    for (int b = 0; b < n; ++b)
      for (int p = 0; p < 3; ++p)
        if (!std::isfinite(Get(closure.per_bin[b], p)))
          return fail("closure." + std::string(names[p]) + "[" + std::to_string(b) + "] is " +
                      Num(Get(closure.per_bin[b], p)) + ", but must be finite");
  }
  for (int p = 0; p < 3; ++p)
    if (!std::isfinite(Get(closure.global, p)))
      return fail("closure_global." + std::string(names[p]) + " is " + Num(Get(closure.global, p)) +
                  ", but must be finite");
  if (status != "converged" && status != "not_converged" && status != "covariance_failed")
    return fail("status is \"" + status +
                "\", but must be \"converged\", \"not_converged\" or \"covariance_failed\"");
  if (!resolution_uncertainty.empty()) {
    if (static_cast<int>(resolution_uncertainty.size()) != n)
      return fail("resolution_uncertainty has " + std::to_string(resolution_uncertainty.size()) +
                  " bins, but must have num_bins = " + std::to_string(n) + " or none");
    for (int b = 0; b < n; ++b)
      if (!(resolution_uncertainty[b] >= 0.0) || !std::isfinite(resolution_uncertainty[b]))
        return fail("resolution_uncertainty[" + std::to_string(b) + "] is " +
                    Num(resolution_uncertainty[b]) + ", but must be finite and >= 0");
  }
  return true;
}

bool CalibrationParameters::IsUsable(std::string* error, bool require_uncertainty) const {
  if (status != "converged") {
    if (error)
      *error = "status is \"" + status + "\"" +
               (status_message.empty() ? "" : " (" + status_message + ")") +
               ", but must be \"converged\": the calibration fit failed, so its parameters and "
               "covariance cannot be used; rerun the calibration (lepus calibrate)";
    return false;
  }
  bool any = !require_uncertainty;
  for (Eigen::Index i = 0; i < covariance.rows() && !any; ++i) any = covariance(i, i) > 0.0;
  if (!any) {
    if (error)
      *error = "covariance is all zero on its diagonal (" + std::to_string(covariance.rows()) +
               " parameters), but must have at least one positive variance: a calibration "
               "without uncertainties would silently drop the momentum-scale nuisances";
    return false;
  }
  return true;
}

// ---- synthetic default

CalibrationParameters SyntheticCalibration(const SyntheticCalibrationOptions& options) {
  if (!(options.uncertainty_scale > 0.0) || !std::isfinite(options.uncertainty_scale))
    throw std::invalid_argument("SyntheticCalibrationOptions: uncertainty_scale is " +
                                Num(options.uncertainty_scale) + ", but must be > 0");
  CalibrationParameters c;
  c.description = "lepus built-in synthetic calibration (independent 3x3 blocks per eta bin)";
  c.eta_edges = DefaultEdges();
  c.params.assign(options.central.begin(), options.central.end());
  const int n = kScaleEtaBins;
  c.covariance = Eigen::MatrixXd::Zero(3 * n, 3 * n);
  std::mt19937_64 rng(options.seed);
  std::normal_distribution<double> gauss(0.0, 1.0);
  for (int b = 0; b < n; ++b) {
    const double eta = 0.5 * (c.eta_edges[b] + c.eta_edges[b + 1]);
    const double r2 = (eta / 2.4) * (eta / 2.4);
    const double s = options.uncertainty_scale;
    const double sa = s * (1e-4 + 4e-4 * r2);
    const double se = s * 1e-3 * (1.0 + 2.0 * r2);
    const double sm = s * 2e-6 * (1.0 + 3.0 * r2);
    Eigen::Matrix3d blk;
    blk << sa * sa, 0.6 * sa * se, 0.0,  //
        0.6 * sa * se, se * se, 0.0,     //
        0.0, 0.0, sm * sm;
    c.covariance.block<3, 3>(3 * b, 3 * b) = blk;
    if (options.seed != 0) {
      const Eigen::LLT<Eigen::Matrix3d> llt(blk);
      if (llt.info() != Eigen::Success)  // positive definite by construction (scale > 0)
        throw std::runtime_error("synthetic calibration: the covariance block of eta bin " +
                                 std::to_string(b) + " is not positive definite");
      const Eigen::Matrix3d l = llt.matrixL();
      Eigen::Vector3d z(gauss(rng), gauss(rng), gauss(rng));
      const Eigen::Vector3d d = l * z;
      c.params[b].A += d(0);
      c.params[b].e += d(1);
      c.params[b].M += d(2);
    }
  }
  return c;
}

// ---- JSON

namespace {

// A non-finite value as shown in messages.
std::string Shown(double v) { return std::isnan(v) ? "nan" : v > 0 ? "inf" : "-inf"; }

class Reader {
 public:
  Reader(const json& j, std::string origin) : j_(j), origin_(std::move(origin)) {}
  [[noreturn]] void Fail(const std::string& what) const {
    throw io::InputError(origin_ + ": " + what);
  }
  const json& Required(const json& obj, const std::string& key, const std::string& where) const {
    auto it = obj.find(key);
    if (it == obj.end()) Fail("missing key \"" + where + key + "\"");
    return *it;
  }
  std::vector<double> Numbers(const json& v, const std::string& name) const {
    if (!v.is_array())
      Fail("\"" + name + "\" is " + std::string(v.type_name()) +
           ", but must be an array of numbers");
    std::vector<double> out;
    out.reserve(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (!v[i].is_number())
        Fail("\"" + name + "\"[" + std::to_string(i) + "] is " + std::string(v[i].type_name()) +
             ", but must be a number");
      // Defensive: nlohmann_json already refuses 1e400 while parsing (CalibrationFromJson).
      if (!std::isfinite(v[i].get<double>()))
        Fail("\"" + name + "\"[" + std::to_string(i) + "] is " + Shown(v[i].get<double>()) +
             ", but must be a finite number (at most 1.8e308 in magnitude)");
      out.push_back(v[i].get<double>());
    }
    return out;
  }
  const json& root() const { return j_; }

 private:
  const json& j_;
  std::string origin_;
};

std::vector<ScaleBias> ReadTriples(const Reader& r, const json& obj, const std::string& prefix,
                                   std::size_t n) {
  std::vector<ScaleBias> out(n);
  const char* names[3] = {"A", "e", "M"};
  for (int p = 0; p < 3; ++p) {
    const std::vector<double> v = r.Numbers(r.Required(obj, names[p], prefix), prefix + names[p]);
    if (v.size() != n)
      r.Fail("\"" + prefix + names[p] + "\" has " + std::to_string(v.size()) +
             " entries, but must have one per eta bin (" + std::to_string(n) + ")");
    for (std::size_t b = 0; b < n; ++b) Set(out[b], p, v[b]);
  }
  return out;
}

}  // namespace

CalibrationParameters CalibrationFromJson(const std::string& text, const std::string& origin,
                                          CalibrationCheck check) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::out_of_range& e) {
    // nlohmann_json refuses a number beyond the range of a double (1e400) while parsing.
    throw io::InputError(origin +
                         ": a number is beyond the range of a double (at most 1.8e308 "
                         "in magnitude): " +
                         e.what());
  } catch (const json::exception& e) {  // parse_error and the rest
    throw io::InputError(origin + ": not valid JSON: " + e.what());
  }
  Reader r(j, origin);
  if (!j.is_object())
    r.Fail("the top level is " + std::string(j.type_name()) + ", but must be an object");
  static const std::set<std::string> known = {"schema",
                                              "schema_version",
                                              "description",
                                              "convention",
                                              "eta_edges",
                                              "A",
                                              "e",
                                              "M",
                                              "covariance",
                                              "closure",
                                              "closure_global",
                                              "resolution_uncertainty",
                                              "status",
                                              "status_message"};
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!known.count(it.key()))
      r.Fail("unknown key \"" + it.key() +
             "\" (known: schema, schema_version, description, "
             "convention, eta_edges, A, e, M, covariance, closure, closure_global, "
             "resolution_uncertainty, status, status_message)");
  const json& schema = r.Required(j, "schema", "");
  if (!schema.is_string() || schema.get<std::string>() != kSchemaName)
    r.Fail("\"schema\" is " + schema.dump() + ", but must be \"" + kSchemaName +
           "\" (not a lepus calibration file)");
  const json& version = r.Required(j, "schema_version", "");
  if (!version.is_number_integer())
    r.Fail("\"schema_version\" is " + version.dump() + ", but must be an integer");
  const int v = version.get<int>();
  if (v < kCalibrationMinSchemaVersion || v > kCalibrationSchemaVersion)
    r.Fail("schema_version is " + std::to_string(v) + ", but this lepus reads versions " +
           std::to_string(kCalibrationMinSchemaVersion) + " to " +
           std::to_string(kCalibrationSchemaVersion) +
           (v > kCalibrationSchemaVersion ? " (the file is newer: update lepus)"
                                          : " (the file is older: regenerate it)"));
  CalibrationParameters c;
  c.schema_version = v;
  if (auto it = j.find("description"); it != j.end()) {
    if (!it->is_string())
      r.Fail("\"description\" is " + std::string(it->type_name()) + ", but must be a string");
    c.description = it->get<std::string>();
  }
  c.eta_edges = r.Numbers(r.Required(j, "eta_edges", ""), "eta_edges");
  if (c.eta_edges.size() < 2)
    r.Fail("\"eta_edges\" has " + std::to_string(c.eta_edges.size()) +
           " entries, but must have >= 2");
  const std::size_t n = c.eta_edges.size() - 1;
  c.params = ReadTriples(r, j, "", n);
  const json& cov = r.Required(j, "covariance", "");
  const std::size_t dim = 3 * n;
  if (!cov.is_array() || cov.size() != dim)
    r.Fail("\"covariance\" must be an array of " + std::to_string(dim) + " rows (3 x eta bins)");
  c.covariance.resize(static_cast<Eigen::Index>(dim), static_cast<Eigen::Index>(dim));
  for (std::size_t i = 0; i < dim; ++i) {
    const std::vector<double> row = r.Numbers(cov[i], "covariance[" + std::to_string(i) + "]");
    if (row.size() != dim)
      r.Fail("\"covariance\"[" + std::to_string(i) + "] has " + std::to_string(row.size()) +
             " entries, but must have " + std::to_string(dim));
    for (std::size_t k = 0; k < dim; ++k) c.covariance(i, k) = row[k];
  }
  if (auto it = j.find("closure"); it != j.end()) {
    if (!it->is_object())
      r.Fail("\"closure\" is " + std::string(it->type_name()) + ", but must be an object");
    for (auto k = it->begin(); k != it->end(); ++k)
      if (k.key() != "A" && k.key() != "e" && k.key() != "M")
        r.Fail("unknown key \"closure." + k.key() + "\" (known: A, e, M)");
    c.closure.per_bin = ReadTriples(r, *it, "closure.", n);
  }
  if (auto it = j.find("closure_global"); it != j.end()) {
    if (v < 2)
      r.Fail("\"closure_global\" needs schema_version >= 2, but the file declares version " +
             std::to_string(v));
    if (!it->is_object())
      r.Fail("\"closure_global\" is " + std::string(it->type_name()) + ", but must be an object");
    const char* names[3] = {"A", "e", "M"};
    for (auto k = it->begin(); k != it->end(); ++k)
      if (k.key() != "A" && k.key() != "e" && k.key() != "M")
        r.Fail("unknown key \"closure_global." + k.key() + "\" (known: A, e, M)");
    for (int p = 0; p < 3; ++p) {
      const json& x = r.Required(*it, names[p], "closure_global.");
      if (!x.is_number())
        r.Fail("\"closure_global." + std::string(names[p]) + "\" is " + std::string(x.type_name()) +
               ", but must be a number");
      if (!std::isfinite(x.get<double>()))
        r.Fail("\"closure_global." + std::string(names[p]) + "\" is " + Shown(x.get<double>()) +
               ", but must be a finite number (at most 1.8e308 in magnitude)");
      Set(c.closure.global, p, x.get<double>());
    }
  }
  if (auto it = j.find("resolution_uncertainty"); it != j.end())
    c.resolution_uncertainty = r.Numbers(*it, "resolution_uncertainty");
  // Version 3: the outcome of the fit. Absent (every older file): "converged"; the usability
  // check below still refuses an all-zero covariance, which is what older failed fits wrote.
  for (const char* key : {"status", "status_message"}) {
    auto it = j.find(key);
    if (it == j.end()) continue;
    if (v < 3)
      r.Fail("\"" + std::string(key) +
             "\" needs schema_version >= 3, but the file declares version " + std::to_string(v));
    if (!it->is_string())
      r.Fail("\"" + std::string(key) + "\" is " + std::string(it->type_name()) +
             ", but must be a string");
    (std::string(key) == "status" ? c.status : c.status_message) = it->get<std::string>();
  }
  std::string error;
  if (!c.IsValid(&error)) r.Fail(error);
  if (check == CalibrationCheck::kUsable && !c.IsUsable(&error)) r.Fail(error);
  return c;
}

CalibrationParameters ReadCalibration(const std::string& path, CalibrationCheck check) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw io::InputError(path + ": cannot open the calibration file");
  std::ostringstream ss;
  ss << in.rdbuf();
  return CalibrationFromJson(ss.str(), path, check);
}

std::string CalibrationToJson(const CalibrationParameters& c) {
  std::string error;
  if (!c.IsValid(&error)) throw std::invalid_argument(error);
  // Written by hand so that every array (and each covariance row) is one line; numbers via
  // nlohmann (shortest round-trip representation).
  auto arr = [](const std::vector<double>& v) { return json(v).dump(); };
  auto component = [&](const std::vector<ScaleBias>& t, int p) {
    std::vector<double> v(t.size());
    for (std::size_t b = 0; b < t.size(); ++b) v[b] = Get(t[b], p);
    return arr(v);
  };
  std::ostringstream os;
  os << "{\n";
  os << "  \"schema\": \"" << kSchemaName << "\",\n";
  // The lowest version that holds the content (older readers keep reading plain files).
  const bool failed = c.status != "converged";
  os << "  \"schema_version\": " << (failed ? 3 : c.closure.HasGlobal() ? 2 : 1) << ",\n";
  if (failed) {
    os << "  \"status\": " << json(c.status).dump() << ",\n";
    os << "  \"status_message\": " << json(c.status_message).dump() << ",\n";
  }
  os << "  \"description\": " << json(c.description).dump() << ",\n";
  os << "  \"convention\": " << json(kConvention).dump() << ",\n";
  os << "  \"eta_edges\": " << arr(c.eta_edges) << ",\n";
  os << "  \"A\": " << component(c.params, 0) << ",\n";
  os << "  \"e\": " << component(c.params, 1) << ",\n";
  os << "  \"M\": " << component(c.params, 2) << ",\n";
  if (!c.closure.per_bin.empty()) {
    os << "  \"closure\": {\"A\": " << component(c.closure.per_bin, 0)
       << ", \"e\": " << component(c.closure.per_bin, 1)
       << ", \"M\": " << component(c.closure.per_bin, 2) << "},\n";
  }
  if (c.closure.HasGlobal())
    os << "  \"closure_global\": {\"A\": " << json(c.closure.global.A).dump()
       << ", \"e\": " << json(c.closure.global.e).dump()
       << ", \"M\": " << json(c.closure.global.M).dump() << "},\n";
  if (!c.resolution_uncertainty.empty())
    os << "  \"resolution_uncertainty\": " << arr(c.resolution_uncertainty) << ",\n";
  os << "  \"covariance\": [\n";
  const Eigen::Index dim = c.covariance.rows();
  for (Eigen::Index i = 0; i < dim; ++i) {
    std::vector<double> row(static_cast<std::size_t>(dim));
    for (Eigen::Index k = 0; k < dim; ++k) row[k] = c.covariance(i, k);
    os << "    " << arr(row) << (i + 1 < dim ? ",\n" : "\n");
  }
  os << "  ]\n}\n";
  return os.str();
}

void WriteCalibration(const std::string& path, const CalibrationParameters& c) {
  io::WriteFileAtomically(path, CalibrationToJson(c));
}

// ---- nuisances

double MomentumNuisance::CurvatureShift(int eta_bin, double pt, int charge) const noexcept {
  if (!Touches(eta_bin) || shift.empty()) return 0.0;
  return models::CurvatureShift(shift[eta_bin - first_bin], pt, charge);
}

double MomentumNuisance::ShiftedPt(int eta_bin, double pt, int charge, int sign) const noexcept {
  return pt / (1.0 + sign * CurvatureShift(eta_bin, pt, charge));
}

ScaleTable MomentumNuisance::ToScaleTable(double sign) const {
  if (last_bin >= kScaleEtaBins)
    throw std::invalid_argument("MomentumNuisance::ToScaleTable: " + name + " touches bin " +
                                std::to_string(last_bin) + ", but the default binning has " +
                                std::to_string(kScaleEtaBins) + " bins");
  ScaleTable t{};
  for (int b = first_bin; b <= last_bin && !shift.empty(); ++b) {
    const ScaleBias& s = shift[b - first_bin];
    t[b] = ScaleBias{sign * s.A, sign * s.e, sign * s.M};
  }
  return t;
}

bool MomentumNuisanceOptions::IsValid(std::string* error) const {
  if (!(stat_scale > 0.0) || !std::isfinite(stat_scale)) {
    if (error)
      *error = "MomentumNuisanceOptions: stat_scale is " + Num(stat_scale) + ", but must be > 0";
    return false;
  }
  if (!(relative_cutoff >= 0.0) || !(relative_cutoff < 1.0)) {
    if (error)
      *error = "MomentumNuisanceOptions: relative_cutoff is " + Num(relative_cutoff) +
               ", but must be in [0, 1)";
    return false;
  }
  return true;
}

std::vector<MomentumNuisance> MomentumNuisances(const CalibrationParameters& c,
                                                const MomentumNuisanceOptions& options) {
  std::string error;
  if (!c.IsValid(&error)) throw std::invalid_argument(error);
  if (!options.IsValid(&error)) throw std::invalid_argument(error);
  const int n = c.num_bins();
  // Connected components of the bin graph (bins a, b linked by any non-zero covariance).
  std::vector<int> parent(n);
  std::iota(parent.begin(), parent.end(), 0);
  auto find = [&](int a) {
    while (parent[a] != a) a = parent[a] = parent[parent[a]];
    return a;
  };
  for (int a = 0; a < n; ++a)
    for (int b = a + 1; b < n; ++b) {
      if (c.covariance.block<3, 3>(3 * a, 3 * b).cwiseAbs().maxCoeff() == 0.0) continue;
      const int ra = find(a), rb = find(b);
      if (ra != rb) parent[std::max(ra, rb)] = std::min(ra, rb);
    }
  std::vector<std::vector<int>> blocks;
  std::vector<int> block_of_root(n, -1);
  for (int b = 0; b < n; ++b) {
    const int r = find(b);
    if (block_of_root[r] < 0) {
      block_of_root[r] = static_cast<int>(blocks.size());
      blocks.emplace_back();
    }
    blocks[block_of_root[r]].push_back(b);
  }

  std::vector<MomentumNuisance> out;
  int counter = 0;
  for (const std::vector<int>& bins : blocks) {
    const int m = static_cast<int>(bins.size());
    Eigen::MatrixXd sub(3 * m, 3 * m);
    for (int a = 0; a < m; ++a)
      for (int b = 0; b < m; ++b)
        sub.block<3, 3>(3 * a, 3 * b) = c.covariance.block<3, 3>(3 * bins[a], 3 * bins[b]);
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(sub);
    if (es.info() != Eigen::Success)
      throw std::invalid_argument(
          "MomentumNuisances: the eigen-decomposition of the calibration "
          "covariance block starting at eta bin " +
          std::to_string(bins.front()) + " did not converge");
    const Eigen::VectorXd& lambda = es.eigenvalues();  // ascending
    const double lmax = lambda(lambda.size() - 1);
    if (!(lmax > 0.0)) continue;  // an all-zero block: no uncertainty, no nuisance
    if (lambda(0) < -1e-9 * lmax)
      throw std::invalid_argument(
          "MomentumNuisances: the calibration covariance has eigenvalue " + Num(lambda(0)) +
          " in the block starting at eta bin " + std::to_string(bins.front()) +
          ", but must be positive semi-definite (largest " + Num(lmax) + ")");
    for (Eigen::Index k = lambda.size() - 1; k >= 0; --k) {
      if (lambda(k) <= options.relative_cutoff * lmax || lambda(k) <= 0.0) break;
      Eigen::VectorXd v = es.eigenvectors().col(k);
      Eigen::Index imax = 0;
      v.cwiseAbs().maxCoeff(&imax);
      if (v(imax) < 0.0) v = -v;
      const double f = options.stat_scale * std::sqrt(lambda(k));
      MomentumNuisance nu;
      nu.name = "muonScaleStat" + std::to_string(counter++);
      nu.group = "muonScale";
      nu.kind = MomentumNuisanceKind::kCalibrationStat;
      nu.first_bin = bins.front();
      nu.last_bin = bins.back();
      nu.shift.assign(nu.last_bin - nu.first_bin + 1, ScaleBias{});
      for (int a = 0; a < m; ++a)
        nu.shift[bins[a] - nu.first_bin] =
            ScaleBias{f * v(3 * a), f * v(3 * a + 1), f * v(3 * a + 2)};
      out.push_back(std::move(nu));
    }
  }
  if (options.closure && !c.closure.per_bin.empty()) {
    for (int b = 0; b < n; ++b) {
      const ScaleBias& s = c.closure.per_bin[b];
      if (s.A == 0.0 && s.e == 0.0 && s.M == 0.0) continue;
      MomentumNuisance nu;
      nu.name = "muonScaleClosure_eta" + std::to_string(b);
      nu.group = "muonScale";
      nu.kind = MomentumNuisanceKind::kClosure;
      nu.first_bin = nu.last_bin = b;
      nu.shift = {s};
      out.push_back(std::move(nu));
    }
  }
  if (options.closure && c.closure.HasGlobal()) {
    MomentumNuisance nu;
    nu.name = "muonScaleClosureGlobal";
    nu.group = "muonScale";
    nu.kind = MomentumNuisanceKind::kClosure;
    nu.first_bin = 0;
    nu.last_bin = n - 1;
    nu.shift.assign(n, c.closure.global);
    out.push_back(std::move(nu));
  }
  if (options.resolution && !c.resolution_uncertainty.empty()) {
    for (int b = 0; b < n; ++b) {
      if (c.resolution_uncertainty[b] == 0.0) continue;
      MomentumNuisance nu;
      nu.name = "muonResolution_eta" + std::to_string(b);
      nu.group = "muonResolution";
      nu.kind = MomentumNuisanceKind::kResolution;
      nu.first_bin = nu.last_bin = b;
      nu.resolution = {c.resolution_uncertainty[b]};
      out.push_back(std::move(nu));
    }
  }
  return out;
}

std::vector<std::vector<int>> NuisancesByEtaBin(const std::vector<MomentumNuisance>& nuisances,
                                                int num_bins) {
  std::vector<std::vector<int>> out(std::max(num_bins, 0));
  for (std::size_t k = 0; k < nuisances.size(); ++k) {
    const MomentumNuisance& nu = nuisances[k];
    for (int b = std::max(nu.first_bin, 0); b <= std::min(nu.last_bin, num_bins - 1); ++b) {
      bool nonzero = !nu.resolution.empty();
      if (!nu.shift.empty()) {
        const ScaleBias& s = nu.shift[b - nu.first_bin];
        nonzero = s.A != 0.0 || s.e != 0.0 || s.M != 0.0;
      }
      if (nonzero) out[b].push_back(static_cast<int>(k));
    }
  }
  return out;
}

}  // namespace lepus::models
