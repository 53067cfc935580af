// The human-readable tables of the inference toolkit on stderr: impacts (the analysis-style
// table of groups and the CMS W-mass "Source of uncertainty" table), combinations, correlations.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include "lepus/engine/combination.h"
#include "lepus/engine/fit.h"
#include "lepus/engine/impacts.h"
#include "lepus/engine/likelihood.h"
#include "lepus/engine/model.h"

namespace lepus::cli {

// The physical scale shared by every parameter of a combination (e.g. 100 for mass shifts of
// 100 MeV per unit) and its unit; 0 when they have none or different ones.
double CombinationScale(const engine::Likelihood& likelihood,
                        const engine::LinearCombination& combination, std::string* unit);

// The impact table of each target, like the CMS W-mass analysis's: one row per group (the model's and
// extra_groups, omitting a group that contains the target's own parameters), "stat",
// "binByBinStat", sorted by nominal impact, then "Total"; columns Nominal and (when computed)
// Global, in the target's physical units when it has a scale; binByBinStat_fullcov; the global
// closure residual and rabbit's global stat / binByBinStat where they differ; then
// the top_n individual parameters by |nominal impact| with their global impact.
void PrintImpactTable(std::ostream& os, const engine::Likelihood& likelihood,
                      const engine::FitResult& result, const engine::Impacts& impacts,
                      const std::vector<engine::LinearCombination>& combinations,
                      const std::vector<engine::SystematicGroup>& extra_groups, int top_n);

// Combinations: value +- error (physical units where the parameters share a scale) and the
// correlation with each POI and NOI.
void PrintCombinations(std::ostream& os, const engine::Likelihood& likelihood,
                       const std::vector<engine::LinearCombination>& combinations,
                       const std::vector<engine::CombinationResult>& results);

// Correlation matrix of the parameters `indices` (at most max_print of them are printed).
void PrintCorrelationMatrix(std::ostream& os, const engine::Likelihood& likelihood,
                            const engine::FitResult& result, const std::vector<int>& indices,
                            int max_print = 30);

// One row of a seed-like impact table: the label printed and the impact groups whose
// impacts are combined in quadrature for it (nominal: of the union's grouped impact when
// the groups are in `impacts`; a group missing from the model is skipped, a row with no
// group present is printed as "-").
struct ImpactRow {
  std::string label;
  std::vector<std::string> groups;
};
// The seed's "Source of uncertainty | Impact (MeV): Nominal, Global" table for one target of
// the impacts, rows in the given order, then "Total uncertainty". Nominal impacts of a row with
// several groups are added in quadrature (exact only for uncorrelated groups: give a single
// group that contains them all when possible); global impacts always add in quadrature.
void PrintSeedImpactTable(std::ostream& os, const engine::Impacts& impacts, int target,
                          const std::vector<ImpactRow>& rows);

}  // namespace lepus::cli
