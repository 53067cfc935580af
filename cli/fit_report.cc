// The human-readable report of a fit (fit_report.h).
#include "fit_report.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include "lepus/io/errors.h"
#include "text_format.h"

#ifndef LEPUS_VERSION
#define LEPUS_VERSION "unknown"
#endif

namespace lepus::cli {

using namespace detail;

bool CovarianceUntrusted(const engine::FitResult& r) {
  return r.covariance_status == engine::CovarianceStatus::kNearSingular ||
         r.covariance_status == engine::CovarianceStatus::kForcedPositive;
}

std::string WhyNoCovariance(const engine::FitResult& r) {
  if (!r.ok())
    return "the fit did not converge (" + engine::ToString(r.status) +
           (r.message.empty() ? "" : ": " + r.message) + ")";
  switch (r.covariance_status) {
    case engine::CovarianceStatus::kAccurate:
      return "the fit's covariance is accurate";
    case engine::CovarianceStatus::kTargetsOnly:
      return "the matrix-free fit computes the covariance rows of the POIs and NOIs only "
             "(use --method dense)";
    case engine::CovarianceStatus::kAccurateSelected:
      return "the fit computed the errors and the covariance rows of the POIs and NOIs only "
             "(use --full-covariance)";
    case engine::CovarianceStatus::kNotComputed:
      return "the fit computed no covariance";
    default:
      break;
  }
  return "the fit's covariance is " + engine::ToString(r.covariance_status) +
         (r.covariance_message.empty() ? "" : " (" + r.covariance_message + ")");
}

void PrintFitReport(std::ostream& os, const engine::Likelihood& likelihood,
                    const engine::FitResult& r, int max_rows) {
  const auto& params = likelihood.params();
  const int n = static_cast<int>(params.size());
  const bool have_values = r.values.size() == n;

  auto pull_of = [&](int i) -> double {
    const auto& p = params[i];
    if (!have_values || !p.constrained || !(p.prefit_error > 0.0)) return NAN;
    return (r.values[i] - p.prefit) / p.prefit_error;
  };

  // Rows: all POIs and NOIs; the other nuisances all, or the largest |pull|s.
  std::vector<int> rows, nuisances;
  for (int i = 0; i < n; ++i)
    (params[i].kind == engine::ParamKind::kNuisance ? nuisances : rows).push_back(i);
  int hidden = 0;
  if (static_cast<int>(nuisances.size()) > max_rows) {
    std::stable_sort(nuisances.begin(), nuisances.end(), [&](int a, int b) {
      const double pa = std::abs(pull_of(a)), pb = std::abs(pull_of(b));
      return (std::isfinite(pa) ? pa : -1.0) > (std::isfinite(pb) ? pb : -1.0);
    });
    hidden = static_cast<int>(nuisances.size()) - max_rows;
    nuisances.resize(max_rows);
  }
  rows.insert(rows.end(), nuisances.begin(), nuisances.end());

  std::size_t wname = 9;
  for (int i : rows) wname = std::max(wname, params[i].name.size());
  wname = std::min<std::size_t>(wname, 48);

  os << Pad("parameter", wname, true) << "  " << Pad("kind", 8, true) << Pad("value", 12)
     << Pad("error", 12) << Pad("prefit", 10) << Pad("pull", 9) << Pad("constr.", 9) << "\n";
  os << std::string(wname + 2 + 8 + 12 + 12 + 10 + 9 + 9, '-') << "\n";
  for (int i : rows) {
    const auto& p = params[i];
    const bool frozen = i < static_cast<int>(r.frozen.size()) && r.frozen[i];
    const double value = have_values ? r.values[i] : NAN;
    // No confident error from a covariance that is not trusted.
    const double error = i < r.errors.size() && !CovarianceUntrusted(r) ? r.errors[i] : NAN;
    const double pull = pull_of(i);
    const double constraint =
        (p.constrained && p.prefit_error > 0.0 && !frozen) ? error / p.prefit_error : NAN;
    os << Pad(p.name, wname, true) << "  " << Pad(engine::ToString(p.kind), 8, true)
       << Pad(Num(value), 12) << Pad(frozen ? "fixed" : Num(error), 12) << Pad(Num(p.prefit), 10)
       << Pad(std::isfinite(pull) ? Printf("%+.3f", pull) : "-", 9)
       << Pad(std::isfinite(constraint) ? Printf("%.3f", constraint) : "-", 9) << "\n";
  }
  if (hidden > 0)
    os << "(" << hidden << " more nuisances with smaller |pull| not shown; all are in the JSON "
       << "output)\n";

  // Nuisances of interest with a physical scale, in physical units.
  for (int i = 0; i < n; ++i) {
    const auto& p = params[i];
    if (p.kind != engine::ParamKind::kNoi || !(p.scale != 0.0) || !have_values) continue;
    os << p.name << " = "
       << FormatPhysical(r.values[i],
                         r.errors.size() == n && !CovarianceUntrusted(r) ? r.errors[i] : NAN,
                         p.scale, p.unit)
       << "\n";
  }

  os << "\nfit status: " << engine::ToString(r.status);
  if (!r.message.empty()) os << " (" << r.message << ")";
  os << "\n  NLL " << Printf("%.6f", r.nll) << ", EDM " << Printf("%.3g", r.edm) << ", "
     << r.iterations << " iterations, " << r.evaluations << " evaluations\n";
  os << "  covariance: " << engine::ToString(r.covariance_status);
  if (std::isfinite(r.nll))
    os << " (Hessian "
       << (r.hessian_positive_definite ? "positive definite" : "NOT positive definite") << ")";
  else
    os << " (no finite NLL: no minimum to describe)";
  os << "\n";
  if (!r.covariance_message.empty()) os << "  " << r.covariance_message << "\n";
  if (CovarianceUntrusted(r))
    os << "  errors not shown (-): the covariance is not reliable; they are still written to "
          "the JSON/HDF5 output with covariance_status "
       << engine::ToString(r.covariance_status) << "\n";
  os << "  saturated goodness of fit: chi2/ndf = " << Printf("%.2f", r.gof_chi2) << "/" << r.gof_ndf
     << ", p = " << Printf("%.3g", r.gof_p) << "\n";
  os << "  time: total " << Printf("%.3f", r.time_total) << " s (evaluation "
     << Printf("%.3f", r.time_evaluation) << ", linear algebra "
     << Printf("%.3f", r.time_linear_algebra) << ", covariance "
     << Printf("%.3f", r.time_covariance) << ")\n";
}

std::string FormatPhysical(double value, double error, double scale, const std::string& unit) {
  const double v = value * scale, e = std::abs(error * scale);
  std::string out;
  if (std::isfinite(e) && e > 0.0) {
    // Two significant digits of the error, the value to the same decimal place.
    const int decimals = std::clamp(1 - static_cast<int>(std::floor(std::log10(e))), 0, 12);
    char buf[96];
    std::snprintf(buf, sizeof(buf), "%.*f +- %.*f", decimals, v, decimals, e);
    out = buf;
  } else {
    out = Printf("%.4g", v) + " +- " + Num(e);
  }
  if (!unit.empty()) out += " " + unit;
  return out;
}

}  // namespace lepus::cli
