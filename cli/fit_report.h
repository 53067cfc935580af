// The human-readable report of a fit on stderr: the parameter table, the fit quality, and the
// checks that decide whether its errors are printed.
#pragma once

#include <iosfwd>
#include <string>

#include "lepus/engine/fit.h"
#include "lepus/engine/likelihood.h"
#include "lepus/engine/model.h"

namespace lepus::cli {

// True when the fit computed a covariance that is not to be trusted (near_singular,
// forced_positive): its errors are not printed and the command exits with kExitFitFailed.
bool CovarianceUntrusted(const engine::FitResult& result);
// Why the fit has no accurate covariance, for messages: "the fit did not converge (...)", "the
// fit's covariance is near_singular (...)", ...
std::string WhyNoCovariance(const engine::FitResult& result);

// The human-readable report: parameter table (POIs and nuisances of interest always; other
// nuisances all when there are at most max_rows, else the max_rows largest |pull|s) and the fit
// quality block. Errors (and constraints) are printed as "-" when CovarianceUntrusted.
void PrintFitReport(std::ostream& os, const engine::Likelihood& likelihood,
                    const engine::FitResult& result, int max_rows = 40);

// "-9.8 +- 5.1 MeV": a nuisance of interest in physical units (value * scale).
std::string FormatPhysical(double value, double error, double scale, const std::string& unit);

}  // namespace lepus::cli
