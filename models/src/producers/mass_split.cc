// Charge / eta-split mass parameters (mass_split.h; docs/wlike.md).
#include "lepus/models/mass_split.h"

#include <cmath>
#include <cstdio>
#include <sstream>
#include <stdexcept>

#include "lepus/models/internal/validation.h"

namespace lepus::models {

namespace {

constexpr double kEtaMax = 2.4;

using detail::Num;

std::vector<double> DefaultAbsEtaEdges() {
  std::vector<double> e;
  for (int i = 0; i <= 24; ++i) e.push_back(i * 0.1);
  return e;
}

}  // namespace

std::string ToString(MassSplitMode mode) {
  return mode == MassSplitMode::kDifference ? "difference" : "separate";
}

MassSplitMode MassSplitModeFromString(std::string_view name) {
  if (name == "separate") return MassSplitMode::kSeparate;
  if (name == "difference") return MassSplitMode::kDifference;
  throw std::invalid_argument("mass_split_mode is '" + std::string(name) +
                              "', but must be separate or difference");
}

std::string MassSplitConfig::Spec() const {
  auto edges = [&] {
    std::string s;
    for (std::size_t i = 0; i < abs_eta_edges.size(); ++i) {
      s += i ? ',' : ':';
      s += Num(abs_eta_edges[i]);
    }
    return s;
  };
  switch (kind) {
    case MassSplitKind::kNone:
      return "none";
    case MassSplitKind::kCharge:
      return "charge";
    case MassSplitKind::kEtaSign:
      return "eta_sign";
    case MassSplitKind::kAbsEta:
      return "abs_eta" + edges();
    case MassSplitKind::kChargeAbsEta:
      return "charge_abs_eta" + edges();
  }
  return "none";
}

MassSplitConfig MassSplitConfig::FromSpec(std::string_view spec, const std::string& what) {
  const std::string s(spec);
  const std::string must =
      ", but must be none, charge, eta_sign, abs_eta:<|eta| edges> (e.g. abs_eta:0,1.2,2.4) or "
      "charge_abs_eta[:<|eta| edges>]";
  MassSplitConfig c;
  const auto colon = s.find(':');
  const std::string head = s.substr(0, colon);
  if (head == "none" || head == "charge" || head == "eta_sign") {
    if (colon != std::string::npos) throw std::invalid_argument(what + " is '" + s + "'" + must);
    c.kind = head == "none"     ? MassSplitKind::kNone
             : head == "charge" ? MassSplitKind::kCharge
                                : MassSplitKind::kEtaSign;
    return c;
  }
  if (head != "abs_eta" && head != "charge_abs_eta")
    throw std::invalid_argument(what + " is '" + s + "'" + must);
  c.kind = head == "abs_eta" ? MassSplitKind::kAbsEta : MassSplitKind::kChargeAbsEta;
  if (colon == std::string::npos) {
    if (c.kind == MassSplitKind::kAbsEta)
      throw std::invalid_argument(what + " is '" + s + "'" + must);
    return c;
  }
  std::stringstream in(s.substr(colon + 1));
  std::string item;
  while (std::getline(in, item, ',')) {
    std::size_t used = 0;
    double v = 0;
    try {
      v = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size())
      throw std::invalid_argument(what + " is '" + s + "', but the |eta| edge '" + item +
                                  "' is not a number");
    c.abs_eta_edges.push_back(v);
  }
  return c;
}

bool MassSplitConfig::IsValid(std::string* error) const {
  auto fail = [&](const std::string& m) {
    if (error) *error = m;
    return false;
  };
  if (kind == MassSplitKind::kAbsEta || kind == MassSplitKind::kChargeAbsEta) {
    const std::vector<double> e = abs_eta_edges.empty() && kind == MassSplitKind::kChargeAbsEta
                                      ? DefaultAbsEtaEdges()
                                      : abs_eta_edges;
    if (e.size() < 2 || std::abs(e.front()) > 1e-9 || std::abs(e.back() - kEtaMax) > 1e-9)
      return fail("mass_split is '" + Spec() +
                  "', but its |eta| edges must run from 0 to 2.4 (at least two edges)");
    for (std::size_t i = 1; i < e.size(); ++i)
      if (!(e[i] > e[i - 1]))
        return fail("mass_split is '" + Spec() + "', but its |eta| edges must increase");
  }
  if (mode == MassSplitMode::kDifference &&
      (kind == MassSplitKind::kAbsEta || kind == MassSplitKind::kNone))
    return fail("mass_split_mode is 'difference', but must be 'separate' for mass_split '" +
                Spec() +
                "' (difference parameters are defined for charge, eta_sign and "
                "charge_abs_eta)");
  return true;
}

std::vector<MassSplitParameter> MassSplitParameters(const MassSplitConfig& config,
                                                    const std::string& noi,
                                                    const BinSpace& fit_space) {
  std::string error;
  if (!config.IsValid(&error)) throw std::invalid_argument(error);
  std::vector<MassSplitParameter> out;
  if (!config.active()) return out;
  const int size = fit_space.size();
  const int n_eta = fit_space.axis_size(0);
  const int n_charge = fit_space.axis_size(fit_space.rank() - 1);
  if (n_charge != 2)
    throw std::invalid_argument(
        "mass split: the fit channel's last axis must be the charge (2 bins)");
  const std::string diff_base =
      noi.rfind("massShift", 0) == 0 ? "massDiff" + noi.substr(9) : noi + "_diff";

  // |eta| range of each fit eta bin (-1 when the split has no |eta| ranges).
  std::vector<int> eta_range(n_eta, -1);
  std::vector<double> edges = config.abs_eta_edges;
  if (config.kind == MassSplitKind::kChargeAbsEta && edges.empty()) edges = DefaultAbsEtaEdges();
  if (!edges.empty()) {
    // Every edge must be a bin edge of |eta| (a fit eta bin in one range only).
    for (double e : edges) {
      bool found = false;
      for (int b = 0; b <= n_eta; ++b) {
        const double lo = b < n_eta ? fit_space.BinLower(0, b) : fit_space.BinUpper(0, n_eta - 1);
        if (std::abs(std::abs(lo) - e) < 1e-6) found = true;
      }
      if (!found)
        throw std::invalid_argument("mass_split is '" + config.Spec() + "', but the |eta| edge " +
                                    Num(e) + " is not an edge of the fit channel's eta bins");
    }
    for (int b = 0; b < n_eta; ++b) {
      const double centre = std::abs(0.5 * (fit_space.BinLower(0, b) + fit_space.BinUpper(0, b)));
      for (std::size_t r = 0; r + 1 < edges.size(); ++r)
        if (centre >= edges[r] && centre < edges[r + 1]) eta_range[b] = static_cast<int>(r);
    }
  }
  auto range_label = [&](int r) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.3g <= |eta| < %.3g", edges[r], edges[r + 1]);
    return std::string(buf);
  };
  // Bin -> (eta bin, charge bin) through the row-major layout: eta first, charge last.
  const int eta_stride = fit_space.stride(0);
  auto eta_of = [&](int i) { return i / eta_stride; };
  auto charge_of = [&](int i) { return i % 2; };  // 0 negative, 1 positive
  auto eta_positive = [&](int i) {
    const int b = eta_of(i);
    return 0.5 * (fit_space.BinLower(0, b) + fit_space.BinUpper(0, b)) > 0;
  };
  auto make = [&](std::string name, std::string description, auto&& coeff) {
    MassSplitParameter p{std::move(name), std::move(description), std::vector<double>(size, 0.0)};
    for (int i = 0; i < size; ++i) p.coeff[i] = coeff(i);
    out.push_back(std::move(p));
  };
  const bool diff = config.mode == MassSplitMode::kDifference;
  switch (config.kind) {
    case MassSplitKind::kNone:
      break;
    case MassSplitKind::kCharge:
      if (diff) {
        make(noi, "m (common)", [](int) { return 1.0; });
        make(diff_base + "_charge", "m(+) - m(-)",
             [&](int i) { return charge_of(i) == 1 ? 0.5 : -0.5; });
      } else {
        make(noi + "_plus", "m(+)", [&](int i) { return charge_of(i) == 1 ? 1.0 : 0.0; });
        make(noi + "_minus", "m(-)", [&](int i) { return charge_of(i) == 0 ? 1.0 : 0.0; });
      }
      break;
    case MassSplitKind::kEtaSign:
      if (diff) {
        make(noi, "m (common)", [](int) { return 1.0; });
        make(diff_base + "_eta", "m(eta > 0) - m(eta < 0)",
             [&](int i) { return eta_positive(i) ? 0.5 : -0.5; });
      } else {
        make(noi + "_etaPlus", "m(eta > 0)", [&](int i) { return eta_positive(i) ? 1.0 : 0.0; });
        make(noi + "_etaMinus", "m(eta < 0)", [&](int i) { return eta_positive(i) ? 0.0 : 1.0; });
      }
      break;
    case MassSplitKind::kAbsEta:
      for (std::size_t r = 0; r + 1 < edges.size(); ++r)
        make(noi + "_absEta" + std::to_string(r), "m(" + range_label(static_cast<int>(r)) + ")",
             [&](int i) { return eta_range[eta_of(i)] == static_cast<int>(r) ? 1.0 : 0.0; });
      break;
    case MassSplitKind::kChargeAbsEta:
      for (std::size_t r = 0; r + 1 < edges.size(); ++r) {
        const int rr = static_cast<int>(r);
        const std::string tag = "_absEta" + std::to_string(r);
        const std::string label = range_label(rr);
        auto in = [&](int i) { return eta_range[eta_of(i)] == rr; };
        if (diff) {
          make(noi + tag, "m(" + label + ")", [&](int i) { return in(i) ? 1.0 : 0.0; });
          make(diff_base + "_charge" + tag, "m(+) - m(-), " + label,
               [&](int i) { return in(i) ? (charge_of(i) == 1 ? 0.5 : -0.5) : 0.0; });
        } else {
          make(noi + "_plus" + tag, "m(+, " + label + ")",
               [&](int i) { return in(i) && charge_of(i) == 1 ? 1.0 : 0.0; });
          make(noi + "_minus" + tag, "m(-, " + label + ")",
               [&](int i) { return in(i) && charge_of(i) == 0 ? 1.0 : 0.0; });
        }
      }
      break;
  }
  return out;
}

void MassSplitTemplates(const MassSplitParameter& p, const std::vector<double>& nominal,
                        const std::vector<double>& up, const std::vector<double>& down,
                        std::vector<double>* out_up, std::vector<double>* out_down) {
  const std::size_t n = nominal.size();
  out_up->resize(n);
  out_down->resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double c = p.coeff[i];
    const double nom = nominal[i];
    if (c == 0.0 || !(nom > 0)) {
      (*out_up)[i] = (*out_down)[i] = nom;
      continue;
    }
    // The NOI's symmetrised log shift per unit of theta (linear where a yield is not positive).
    double k;
    if (up[i] > 0 && down[i] > 0)
      k = 0.5 * (std::log(up[i] / nom) - std::log(down[i] / nom));
    else
      k = 0.5 * (up[i] - down[i]) / nom;
    (*out_up)[i] = nom * std::exp(c * k);
    (*out_down)[i] = nom * std::exp(-c * k);
  }
}

}  // namespace lepus::models
