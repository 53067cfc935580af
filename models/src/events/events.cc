#include "lepus/models/events.h"

#include <cstring>
#include <limits>
#include <stdexcept>

namespace lepus::models {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

constexpr std::array<const char*, kNumProcesses> kProcessNames = {
    "wplus", "wminus", "zmumu", "wtaunu", "ztautau", "nonprompt", "top", "diboson"};

std::vector<ColumnSpec> MakeColumns() {
  using T = ColumnType;
  std::vector<ColumnSpec> c = {
      {"event_number", T::kUInt64, true, 0.0},
      {"process", T::kProcess, true, 0.0},
      {"weight", T::kFloat64, true, 1.0},
      {"n_muons", T::kInt8, true, 0.0},
  };
  // Names must outlive the table: a static pool of strings.
  static const std::vector<std::string> muon_names = [] {
    std::vector<std::string> n;
    for (int s = 0; s < 2; ++s) {
      const std::string p = "mu" + std::to_string(s) + "_";
      for (const char* f :
           {"pt", "eta", "phi", "charge", "rel_iso", "gen_pt", "gen_eta", "gen_phi", "gen_charge",
            "eff_reco", "eff_tracking", "eff_id", "eff_trigger", "eff_iso"})
        n.push_back(p + f);
    }
    return n;
  }();
  for (int s = 0; s < 2; ++s) {
    const std::string* n = &muon_names[s * 14];
    c.push_back({n[0].c_str(), T::kFloat64, true, kNaN});
    c.push_back({n[1].c_str(), T::kFloat64, true, kNaN});
    c.push_back({n[2].c_str(), T::kFloat64, true, kNaN});
    c.push_back({n[3].c_str(), T::kInt8, true, 0.0});
    c.push_back({n[4].c_str(), T::kFloat64, true, kNaN});
    c.push_back({n[5].c_str(), T::kFloat64, false, kNaN});
    c.push_back({n[6].c_str(), T::kFloat64, false, kNaN});
    c.push_back({n[7].c_str(), T::kFloat64, false, kNaN});
    c.push_back({n[8].c_str(), T::kInt8, false, 0.0});
    c.push_back({n[9].c_str(), T::kFloat64, false, 1.0});
    c.push_back({n[10].c_str(), T::kFloat64, false, 1.0});
    c.push_back({n[11].c_str(), T::kFloat64, false, 1.0});
    c.push_back({n[12].c_str(), T::kFloat64, false, 1.0});
    c.push_back({n[13].c_str(), T::kFloat64, false, 1.0});
  }
  for (const char* n : {"met_pt", "met_phi"}) c.push_back({n, T::kFloat64, true, kNaN});
  // The recoil is optional: a reader derives it from MET and the muons when it is missing.
  for (const char* n : {"ut_x", "ut_y"}) c.push_back({n, T::kFloat64, false, kNaN});
  for (const char* n : {"v_mass", "v_pt", "v_y", "v_phi"})
    c.push_back({n, T::kFloat64, false, kNaN});
  c.push_back({"v_charge", T::kInt8, false, 0.0});
  for (const char* n : {"cos_theta_cs", "phi_cs"}) c.push_back({n, T::kFloat64, false, kNaN});
  return c;
}

template <typename T>
bool BitwiseEqual(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

}  // namespace

std::string ToString(Process process) {
  const int i = static_cast<int>(process);
  return IsValidProcessId(i) ? kProcessNames[i] : "process(" + std::to_string(i) + ")";
}

Process ProcessFromString(std::string_view name) {
  std::string valid;
  for (int i = 0; i < kNumProcesses; ++i) {
    if (name == kProcessNames[i]) return static_cast<Process>(i);
    valid += (i ? ", " : "") + std::string(kProcessNames[i]);
  }
  throw std::invalid_argument("unknown process '" + std::string(name) + "' (valid: " + valid + ")");
}

std::string ToString(SampleKind kind) { return kind == SampleKind::kData ? "data" : "simulation"; }

SampleKind SampleKindFromString(std::string_view name) {
  if (name == "simulation") return SampleKind::kSimulation;
  if (name == "data") return SampleKind::kData;
  throw std::invalid_argument("unknown sample kind '" + std::string(name) +
                              "' (valid: simulation, data)");
}

const std::vector<ColumnSpec>& EventColumns() {
  static const std::vector<ColumnSpec> columns = MakeColumns();
  return columns;
}

void EventBatch::Resize(std::size_t n) {
  VisitColumns(*this, [n](const ColumnSpec&, auto& v) { v.resize(n); });
}

void EventBatch::Reserve(std::size_t n) {
  VisitColumns(*this, [n](const ColumnSpec&, auto& v) { v.reserve(n); });
}

void EventBatch::Append(const EventBatch& other, std::size_t begin, std::size_t end) {
  // Walk both batches' columns in the same order.
  std::vector<const void*> src;
  VisitColumns(other, [&](const ColumnSpec&, const auto& v) { src.push_back(&v); });
  std::size_t c = 0;
  VisitColumns(*this, [&](const ColumnSpec&, auto& v) {
    using Vec = std::remove_reference_t<decltype(v)>;
    const Vec& o = *static_cast<const Vec*>(src[c++]);
    v.insert(v.end(), o.begin() + static_cast<std::ptrdiff_t>(begin),
             o.begin() + static_cast<std::ptrdiff_t>(end));
  });
}

void EventBatch::Compact(const std::vector<std::uint8_t>& keep) {
  VisitColumns(*this, [&keep](const ColumnSpec&, auto& v) {
    std::size_t out = 0;
    for (std::size_t i = 0; i < v.size(); ++i)
      if (keep[i]) v[out++] = v[i];
    v.resize(out);
  });
}

bool EventBatch::Consistent() const {
  const std::size_t n = size();
  bool ok = true;
  VisitColumns(*this, [&](const ColumnSpec&, const auto& v) { ok = ok && v.size() == n; });
  return ok;
}

bool EventBatch::Identical(const EventBatch& other) const {
  std::vector<const void*> src;
  VisitColumns(other, [&](const ColumnSpec&, const auto& v) { src.push_back(&v); });
  std::size_t c = 0;
  bool same = true;
  VisitColumns(*this, [&](const ColumnSpec&, const auto& v) {
    using Vec = std::remove_cv_t<std::remove_reference_t<decltype(v)>>;
    same = same && BitwiseEqual(v, *static_cast<const Vec*>(src[c++]));
  });
  return same;
}

double WrapPhi(double phi) {
  constexpr double kPi = 3.14159265358979323846;
  if (phi > kPi || phi <= -kPi) {
    phi = std::remainder(phi, 2.0 * kPi);
    if (phi <= -kPi) phi += 2.0 * kPi;
  }
  return phi;
}

}  // namespace lepus::models
