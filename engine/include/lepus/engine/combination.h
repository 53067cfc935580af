// User-defined linear combinations of parameters (e.g. m(W+) - m(W-)), in reported units
// (mu for POIs): value c.x + c0, uncertainty sqrt(c^T C c), correlations with the POIs/NOIs.
// Impacts of combinations: ImpactOptions::combinations.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "lepus/engine/fit.h"
#include "lepus/engine/likelihood.h"

namespace lepus::engine {

struct LinearCombination {
  std::string name;
  std::string expression;
  std::vector<std::pair<int, double>> terms;  // (parameter index, coefficient)
  double constant = 0.0;
};

// Parses a linear expression of parameter names: numbers, names, + - * / and parentheses, e.g.
// "mass_plus - mass_minus", "(a + b)/2", "0.5*a + 0.5*b", "2*(a - b) + 1". Parameter names are
// the likelihood's (letters, digits, '_', '.', ':'; a name may be quoted with '...' to use other
// characters). Throws std::invalid_argument naming an unknown parameter, a non-linear term
// (a*b, 1/a) or a syntax error with its position.
LinearCombination ParseCombination(const Likelihood& likelihood, const std::string& name,
                                   const std::string& expression);

struct CombinationResult {
  std::string name, expression;
  double value = 0.0, error = 0.0;
  std::vector<std::pair<int, double>> correlations;  // with each POI and NOI (parameter index)
};

CombinationResult EvaluateCombination(const Likelihood& likelihood, const FitResult& result,
                                      const LinearCombination& combination);

// Scales the prior width of every systematic whose name fully matches `regex` by `factor`
// (constraint weight cw -> cw / factor^2; free parameters stay free). Returns the number matched.
// Throws std::invalid_argument for an invalid regex, a factor <= 0 or a pattern matching nothing.
int ScalePriorWidths(Model* model, const std::string& regex, double factor);

}  // namespace lepus::engine
