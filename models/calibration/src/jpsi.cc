#include "lepus/calibration/jpsi.h"

#include "lepus/models/internal/validation.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <utility>
#include <vector>

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include "lepus/models/internal/random.h"

namespace lepus::calibration {

// The event record, the detector and the calibration model of lepus::models.
using namespace lepus::models;

namespace {

using detail::EventRandom;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kTwoPi = 6.283185307179586;
// Key of the J/psi streams: "JPSI" in the high bits, the sample kind in the low ones (never equal
// to a process id of the main generator).
constexpr std::uint64_t kJpsiKey = 0x4A50534900000000ULL;
// Fixed sub-range of the parallel generation (results do not depend on the thread count).
constexpr std::uint64_t kSubRange = 8192;

using detail::Fail;

struct FourVector {
  double e, px, py, pz;
};

double Pt(const FourVector& p) { return std::hypot(p.px, p.py); }
double Eta(const FourVector& p) { return std::asinh(p.pz / Pt(p)); }
double Phi(const FourVector& p) { return std::atan2(p.py, p.px); }

}  // namespace

bool JpsiGeneratorOptions::IsValid(std::string* error) const {
  if (!(pt_min > 0.0 && std::isfinite(pt_min))) return Fail(error, "pt_min", pt_min, "> 0");
  if (!(pt_max > pt_min && std::isfinite(pt_max)))
    return Fail(error, "pt_max", pt_max, "> pt_min (" + std::to_string(pt_min) + ")");
  if (!(pt_index > 1.0 && std::isfinite(pt_index))) return Fail(error, "pt_index", pt_index, "> 1");
  if (!(y_max > 0.0 && std::isfinite(y_max))) return Fail(error, "y_max", y_max, "> 0");
  if (!(muon_min_pt >= 0.0 && std::isfinite(muon_min_pt)))
    return Fail(error, "muon_min_pt", muon_min_pt, ">= 0");
  return true;
}

double DimuonMass(double pt1, double eta1, double phi1, double pt2, double eta2,
                  double phi2) noexcept {
  const double m2 = kMuonMass * kMuonMass;
  const double px1 = pt1 * std::cos(phi1), py1 = pt1 * std::sin(phi1), pz1 = pt1 * std::sinh(eta1);
  const double px2 = pt2 * std::cos(phi2), py2 = pt2 * std::sin(phi2), pz2 = pt2 * std::sinh(eta2);
  const double e1 = std::sqrt(px1 * px1 + py1 * py1 + pz1 * pz1 + m2);
  const double e2 = std::sqrt(px2 * px2 + py2 * py2 + pz2 * pz2 + m2);
  const double s = 2.0 * m2 + 2.0 * (e1 * e2 - px1 * px2 - py1 * py2 - pz1 * pz2);
  return s > 0.0 ? std::sqrt(s) : 0.0;
}

EventFileMetadata MakeJpsiEventFileMetadata(const JpsiGenerator& generator,
                                            std::uint64_t events_generated,
                                            const std::string& creator) {
  const JpsiGeneratorOptions& o = generator.options();
  EventFileMetadata m;
  m.sample = generator.sample();
  m.processes = "jpsi";
  m.seed = generator.seed();
  std::ostringstream g;
  g.precision(17);
  g << "{\"jpsi\": {\"mass\": " << kJpsiMass << ", \"pt_min\": " << o.pt_min
    << ", \"pt_max\": " << o.pt_max << ", \"pt_index\": " << o.pt_index
    << ", \"y_max\": " << o.y_max << ", \"muon_min_pt\": " << o.muon_min_pt << "}}";
  m.generator_params = g.str();
  m.detector_params = generator.detector().params().ToJson();
  m.events_generated = "{\"jpsi\": " + std::to_string(events_generated) + "}";
  std::ostringstream f;
  f << "{\"min_muons\": 2, \"min_pt\": "
    << std::max(generator.detector().params().min_pt, o.muon_min_pt) << "}";
  m.filter = f.str();
  m.creator = creator;
  return m;
}

JpsiGenerator::JpsiGenerator(const JpsiGeneratorOptions& options, const DetectorParams& detector,
                             SampleKind sample, std::uint64_t seed)
    : options_(options), detector_(detector), sample_(sample), seed_(seed) {
  std::string error;
  if (!options_.IsValid(&error)) throw std::invalid_argument("J/psi generator: " + error);
}

bool JpsiGenerator::GenerateEvent(std::uint64_t ev, EventBatch* out,
                                  std::size_t row) const noexcept {
  const std::uint64_t key = kJpsiKey + static_cast<std::uint64_t>(sample_);
  const JpsiGeneratorOptions& o = options_;
  // J/psi kinematics.
  double pt, y, phi;
  {
    EventRandom r(seed_, key, ev, detail::kStreamPt);
    // Inverse CDF of pT^-n on [a, b]: pT = (a^(1-n) - u (a^(1-n) - b^(1-n)))^(1/(1-n)).
    const double g = 1.0 - o.pt_index;
    const double a = std::pow(o.pt_min, g), b = std::pow(o.pt_max, g);
    pt = std::pow(a - r.Uniform() * (a - b), 1.0 / g);
  }
  {
    EventRandom r(seed_, key, ev, detail::kStreamRapidity);
    y = o.y_max * (2.0 * r.Uniform() - 1.0);
    phi = kTwoPi * r.Uniform() - 0.5 * kTwoPi;
  }
  const double mt = std::sqrt(kJpsiMass * kJpsiMass + pt * pt);
  const FourVector jpsi{mt * std::cosh(y), pt * std::cos(phi), pt * std::sin(phi),
                        mt * std::sinh(y)};
  // Isotropic decay in the rest frame, boosted along the J/psi velocity.
  FourVector mu[2];
  {
    EventRandom r(seed_, key, ev, detail::kStreamAngles);
    const double c = 2.0 * r.Uniform() - 1.0;
    const double s = std::sqrt(std::max(0.0, 1.0 - c * c));
    const double f = kTwoPi * r.Uniform();
    const double p = std::sqrt(0.25 * kJpsiMass * kJpsiMass - kMuonMass * kMuonMass);
    const double e_star = 0.5 * kJpsiMass;
    const double qx = p * s * std::cos(f), qy = p * s * std::sin(f), qz = p * c;
    const double bx = jpsi.px / jpsi.e, by = jpsi.py / jpsi.e, bz = jpsi.pz / jpsi.e;
    const double b2 = bx * bx + by * by + bz * bz;
    const double gamma = jpsi.e / kJpsiMass;
    const double bq = bx * qx + by * qy + bz * qz;
    const double k = (gamma - 1.0) * bq / b2 + gamma * e_star;
    mu[0] = {gamma * (e_star + bq), qx + k * bx, qy + k * by, qz + k * bz};
    mu[1] = {jpsi.e - mu[0].e, jpsi.px - mu[0].px, jpsi.py - mu[0].py, jpsi.pz - mu[0].pz};
  }
  int charge[2];
  {
    EventRandom r(seed_, key, ev, detail::kStreamCharge);
    charge[0] = r.Uniform() < 0.5 ? 1 : -1;
    charge[1] = -charge[0];
  }
  // Detector.
  struct Muon {
    double pt, eta, phi, gen_pt;
    int charge;
  } reco[2];
  const double min_pt = std::max(detector_.params().min_pt, o.muon_min_pt);
  for (int j = 0; j < 2; ++j) {
    const double gpt = Pt(mu[j]);
    const double geta = Eta(mu[j]);
    if (!detector_.InAcceptance(geta)) return false;
    EventRandom r(seed_, key, ev, detail::kStreamMuon0 + static_cast<std::uint64_t>(j));
    const double rpt = detector_.SmearPt(gpt, geta, charge[j], r.Normal());
    if (!(rpt > 0.0 && rpt >= min_pt)) return false;
    reco[j] = {rpt, geta, Phi(mu[j]), gpt, charge[j]};
  }
  if (reco[1].pt > reco[0].pt) std::swap(reco[0], reco[1]);

  EventBatch& b = *out;
  b.event_number[row] = ev;
  b.process[row] = Process::kZMuMu;
  b.weight[row] = 1.0;
  b.n_muons[row] = 2;
  double sum_x = 0.0, sum_y = 0.0;
  for (int j = 0; j < 2; ++j) {
    MuonColumns& c = b.muon[j];
    const Muon& m = reco[j];
    c.pt[row] = m.pt;
    c.eta[row] = m.eta;
    c.phi[row] = m.phi;
    c.charge[row] = static_cast<std::int8_t>(m.charge);
    c.rel_iso[row] = 0.0;
    c.gen_pt[row] = m.gen_pt;
    c.gen_eta[row] = m.eta;
    c.gen_phi[row] = m.phi;
    c.gen_charge[row] = static_cast<std::int8_t>(m.charge);
    c.eff_reco[row] = c.eff_tracking[row] = c.eff_id[row] = c.eff_trigger[row] = c.eff_iso[row] =
        1.0;
    sum_x += m.pt * std::cos(m.phi);
    sum_y += m.pt * std::sin(m.phi);
  }
  const double ut_x = -jpsi.px, ut_y = -jpsi.py;
  const double met_x = -(sum_x + ut_x), met_y = -(sum_y + ut_y);
  b.met_pt[row] = std::hypot(met_x, met_y);
  b.met_phi[row] = std::atan2(met_y, met_x);
  b.ut_x[row] = ut_x;
  b.ut_y[row] = ut_y;
  b.v_mass[row] = kJpsiMass;
  b.v_pt[row] = pt;
  b.v_y[row] = y;
  b.v_phi[row] = phi;
  b.v_charge[row] = 0;
  b.cos_theta_cs[row] = kNaN;
  b.phi_cs[row] = kNaN;
  return true;
}

void JpsiGenerator::Generate(std::uint64_t first, std::uint64_t count, EventBatch* out,
                             int num_threads) const {
  if (count == 0) return;
  const std::size_t row0 = out->size();
  out->Resize(row0 + count);
  std::vector<std::uint8_t> keep(row0 + count, 1);
  const std::uint64_t nsub = (count + kSubRange - 1) / kSubRange;
  auto run = [&](std::uint64_t s) {
    const std::uint64_t begin = s * kSubRange;
    const std::uint64_t end = std::min(count, begin + kSubRange);
    for (std::uint64_t i = begin; i < end; ++i)
      keep[row0 + i] = GenerateEvent(first + i, out, row0 + i) ? 1 : 0;
  };
  if (num_threads == 1 || nsub == 1) {
    for (std::uint64_t s = 0; s < nsub; ++s) run(s);
  } else {
    tbb::task_arena arena(num_threads > 0 ? num_threads : tbb::task_arena::automatic);
    arena.execute([&] {
      tbb::parallel_for(tbb::blocked_range<std::uint64_t>(0, nsub, 1),
                        [&](const tbb::blocked_range<std::uint64_t>& r) {
                          for (std::uint64_t s = r.begin(); s < r.end(); ++s) run(s);
                        });
    });
  }
  out->Compact(keep);
}

}  // namespace lepus::calibration
