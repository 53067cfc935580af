// Private: the matrix-free fit (trust-region Newton-CG), called by engine::Fit.
#pragma once

#include "lepus/engine/fit.h"

namespace lepus::engine::detail {

FitResult FitMatrixFree(const Likelihood& likelihood, const FitOptions& options);

}  // namespace lepus::engine::detail
