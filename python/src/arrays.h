// Plain C++ pieces of the Python bindings (no pybind11 here, so they compile once and fast):
// a Model from dense arrays with the file reader's checks and message form, and the mapping of
// the fit keywords (freeze, set, method) and impact groups onto engine options, with the
// command line's messages (flag names without the dashes).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "lepus/engine/fit.h"
#include "lepus/engine/likelihood.h"
#include "lepus/engine/model.h"

namespace lepus::python {

// A C-contiguous float64 array: data pointer (nullptr = not given) and shape.
struct ArrayArg {
  const double* data = nullptr;
  std::vector<std::int64_t> shape;
  bool given() const { return data != nullptr; }
};

struct ArrayModelInput {
  ArrayArg norm;                // [nbins_full, nproc]
  ArrayArg logk;                // [nbins_full, nproc, nsyst]
  ArrayArg data;                // [nbins]; bins nbins.. of norm form a masked channel "masked"
  ArrayArg sumw2;               // [nbins_full, nproc] or not given (no MC statistical uncertainty)
  ArrayArg logk_halfdiff;       // [nbins_full, nproc, nsyst] or not given (symmetric)
  ArrayArg constraint_weights;  // [nsyst] or not given (all 1)
  ArrayArg sumw;                // [nbins_full, nproc] or not given (norm is used)
  std::vector<std::string> processes, systematics, signals, noi;
  std::vector<std::pair<std::string, std::vector<std::string>>> groups;
  std::string systematic_type = "log_normal";
};

// Validates like io::ReadFitInput (messages "<argument>[<index>] is <value>, but must be
// <constraint>"), then Model::IsValid ("invalid model: ..."). Throws std::invalid_argument.
engine::Model ModelFromArrays(const ArrayModelInput& in);

// "[2, 3]".
std::string ShapeString(const std::vector<std::int64_t>& shape);

// FitOptions from the keywords of Model.fit, like the command line's MakeFitOptions:
// freeze = regular expressions matching whole parameter names, set = initial values in reported
// coordinates (mu for POIs). Throws std::invalid_argument.
engine::FitOptions MakeFitOptions(const engine::Likelihood& likelihood,
                                  const std::vector<std::string>& freeze,
                                  const std::vector<std::pair<std::string, double>>& set,
                                  const std::string& method, double edm_tolerance,
                                  int max_iterations);

// Extra impact groups NAME -> REGEX (whole systematic names), like `lepus fit --group`.
std::vector<engine::SystematicGroup> ParseGroups(
    const engine::Model& model, const std::vector<std::pair<std::string, std::string>>& groups);

}  // namespace lepus::python
