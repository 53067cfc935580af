// The inference toolkit's flags (toolkit_flags.h) and tables (impact_tables.h).
#include "toolkit_flags.h"

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

#include "fit_report.h"
#include "impact_tables.h"
#include "lepus/io/errors.h"
#include "text_format.h"

#ifndef LEPUS_VERSION
#define LEPUS_VERSION "unknown"
#endif

namespace lepus::cli {

using namespace detail;

double ParseNumber(const std::string& text, const std::string& what) {
  return ParseDouble(text, what);
}

std::vector<engine::SystematicGroup> ParseGroupFlags(const engine::Model& model,
                                                     const std::vector<std::string>& items) {
  std::vector<engine::SystematicGroup> groups;
  for (const std::string& item : items) {
    const auto [name, pattern] = SplitAssignment(item, "--group", "NAME=REGEX");
    const std::string where = "--group: group " + name;
    if (pattern.empty()) throw std::invalid_argument(where + ": the pattern is empty");
    if (name == "stat" || name == "binByBinStat" || name == "Total")
      throw std::invalid_argument(where +
                                  ": the name is reserved (rows stat, binByBinStat, Total)");
    for (const auto& g : model.groups)
      if (g.name == name)
        throw std::invalid_argument(where + ": the input already has a group of this name");
    for (const auto& g : groups)
      if (g.name == name) throw std::invalid_argument(where + ": given twice");
    std::regex re;
    try {
      re = std::regex(pattern, std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      throw std::invalid_argument(where + ": '" + pattern +
                                  "' is not a valid regular expression (" + e.what() + ")");
    }
    engine::SystematicGroup group;
    group.name = name;
    for (int s = 0; s < model.num_systematics(); ++s)
      if (std::regex_match(model.systematics[s], re)) group.members.push_back(s);
    if (group.members.empty()) {
      std::string some;
      for (int s = 0; s < model.num_systematics() && s < 8; ++s)
        some += (s ? ", " : "") + model.systematics[s];
      if (model.num_systematics() > 8)
        some += ", ... (" + std::to_string(model.num_systematics()) + " in total)";
      throw std::invalid_argument(
          where + ": pattern '" + pattern +
          "' matches no systematic (it must match a whole name; " +
          (some.empty() ? std::string("the input has no systematics") : "systematics: " + some) +
          ")");
    }
    groups.push_back(std::move(group));
  }
  return groups;
}

std::vector<engine::LinearCombination> ParseCombineFlags(const engine::Likelihood& likelihood,
                                                         const std::vector<std::string>& items) {
  std::vector<engine::LinearCombination> out;
  for (const std::string& item : items) {
    const auto [name, expression] = SplitAssignment(item, "--combine", "NAME=EXPRESSION");
    const std::string where = "--combine " + name;
    if (likelihood.FindParam(name) >= 0)
      throw std::invalid_argument(where + ": the name is already a parameter name");
    for (const auto& c : out)
      if (c.name == name) throw std::invalid_argument(where + ": given twice");
    try {
      out.push_back(engine::ParseCombination(likelihood, name, expression));
    } catch (const std::invalid_argument& e) {
      const std::string what = e.what();
      // Unknown parameter names get the same hint as --set.
      const auto q = what.find("unknown parameter \"");
      std::string hint;
      if (q != std::string::npos) {
        const auto start = q + 19, end = what.find('"', start);
        if (end != std::string::npos)
          hint = " (" + SomeNames(likelihood.params(), what.substr(start, end - start)) + ")";
      }
      throw std::invalid_argument(where + ": " + what + hint);
    }
  }
  return out;
}

double CombinationScale(const engine::Likelihood& likelihood,
                        const engine::LinearCombination& combination, std::string* unit) {
  double scale = -1.0;
  std::string u;
  for (const auto& [k, c] : combination.terms) {
    const auto& p = likelihood.params()[k];
    if (scale < 0.0) {
      scale = p.scale;
      u = p.unit;
    } else if (p.scale != scale || p.unit != u) {
      scale = 0.0;
    }
  }
  if (!(scale > 0.0)) {
    if (unit) unit->clear();
    return 0.0;
  }
  if (unit) *unit = u;
  return scale;
}

void PrintImpactTable(std::ostream& os, const engine::Likelihood& likelihood,
                      const engine::FitResult& result, const engine::Impacts& im,
                      const std::vector<engine::LinearCombination>& combinations,
                      const std::vector<engine::SystematicGroup>& extra_groups, int top_n) {
  const auto& params = likelihood.params();
  const int npar = likelihood.num_params(), npoi = likelihood.model().num_pois();
  std::vector<engine::SystematicGroup> groups = likelihood.model().groups;
  groups.insert(groups.end(), extra_groups.begin(), extra_groups.end());

  for (std::size_t k = 0; k < im.target_names.size(); ++k) {
    const auto t = static_cast<Eigen::Index>(k);
    const std::string& name = im.target_names[k];
    const std::string& unit = im.target_unit[k];
    const double scale = im.target_scale[k];
    const double total = im.total[t];
    const int dec = DecimalsFor(total);
    // The target's own parameters and its value (reported units).
    std::vector<int> own;
    double value = NAN;
    if (im.targets[k] >= 0) {
      own.push_back(im.targets[k]);
      value = result.values[im.targets[k]];
    } else {
      for (const auto& c : combinations)
        if (c.name == name) {
          value = c.constant;
          for (const auto& [i, coef] : c.terms) {
            own.push_back(i);
            value += coef * result.values[i];
          }
        }
    }

    struct Row {
      std::string name;
      double nominal, global;
    };
    std::vector<Row> rows;
    std::vector<std::string> omitted;
    for (std::size_t g = 0; g < im.group_names.size(); ++g) {
      const auto gi = static_cast<Eigen::Index>(g);
      if (g < groups.size()) {
        bool contains = false;
        for (int s : groups[g].members)
          contains = contains || std::find(own.begin(), own.end(), npoi + s) != own.end();
        if (contains) {
          omitted.push_back(groups[g].name);
          continue;
        }
      }
      rows.push_back({im.group_names[g], im.grouped_nominal(t, gi),
                      im.has_global ? im.grouped_global(t, gi) : NAN});
    }
    std::stable_sort(rows.begin(), rows.end(),
                     [](const Row& a, const Row& b) { return a.nominal > b.nominal; });

    // Individual sources: every floating parameter but the target's own.
    std::vector<int> single;
    for (int j = 0; j < npar; ++j)
      if (!(j < static_cast<int>(result.frozen.size()) && result.frozen[j]) &&
          std::find(own.begin(), own.end(), j) == own.end())
        single.push_back(j);
    std::stable_sort(single.begin(), single.end(), [&](int a, int b) {
      return std::abs(im.nominal(t, a)) > std::abs(im.nominal(t, b));
    });
    const std::size_t nshow = std::min<std::size_t>(single.size(), std::max(top_n, 0));

    std::size_t wname = 16;
    for (const auto& r : rows) wname = std::max(wname, r.name.size());
    for (std::size_t i = 0; i < nshow; ++i) wname = std::max(wname, params[single[i]].name.size());
    wname = std::min<std::size_t>(wname, 48);
    const std::size_t wcol = 11;
    const std::size_t width = 2 + wname + wcol * (im.has_global ? 2 : 1);

    os << "\nimpacts on " << name;
    if (!unit.empty()) os << " (" << unit << ")";
    if (std::isfinite(value)) {
      const double err = total / scale;  // total is scaled
      os << ": " << FormatPhysical(value, err, scale, unit);
    }
    os << "\n";
    os << "  " << Pad("source", wname, true) << Pad("Nominal", wcol)
       << (im.has_global ? Pad("Global", wcol) : "") << "\n";
    os << "  " << std::string(width - 2, '-') << "\n";
    auto line = [&](const std::string& label, double nominal, double global) {
      os << "  " << Pad(label, wname, true) << Pad(Fixed(nominal, dec), wcol)
         << (im.has_global ? Pad(Fixed(global, dec), wcol) : "") << "\n";
    };
    for (const auto& r : rows) line(r.name, r.nominal, r.global);
    line("Total", total, total);
    if (im.bbstat_fullcov.size())
      os << "  binByBinStat_fullcov (sqrt(Total^2 - Total^2[beta fixed]), every nuisance "
            "floating): "
         << Fixed(im.bbstat_fullcov[t], dec) << "\n";
    if (!omitted.empty()) {
      os << "  (not shown: group";
      for (std::size_t i = 0; i < omitted.size(); ++i) os << (i ? ", " : " ") << omitted[i];
      os << (im.targets[k] >= 0 ? ", which contains " + name + " itself)\n"
                                : ", which contains a parameter of " + name + ")\n");
    }
    if (im.has_global) {
      const double closure = im.global_closure[t];
      os << "  global closure: (sum of squared global impacts) / Total^2 - 1 = "
         << Printf("%.3g", closure) << "; quadrature sum "
         << Fixed(total * std::sqrt(std::max(1.0 + closure, 0.0)), dec)
         << " (exact on Asimov data only)\n";
      const auto ist = static_cast<Eigen::Index>(
          std::find(im.group_names.begin(), im.group_names.end(), "stat") - im.group_names.begin());
      os << "  rabbit global_impacts: stat (Total minus the rest) "
         << Fixed(im.rabbit_global_grouped(t, ist), dec);
      if (ist + 1 < static_cast<Eigen::Index>(im.group_names.size()))
        os << ", binByBinStat (sigma^2(beta0) = 1/k) "
           << Fixed(im.rabbit_global_grouped(t, ist + 1), dec);
      os << "\n";
    }
    if (nshow > 0) {
      os << "  largest individual impacts (signed; " << nshow << " of " << single.size() << "):\n";
      os << "  " << Pad("parameter", wname, true) << Pad("Nominal", wcol)
         << (im.has_global ? Pad("Global", wcol) : "") << "\n";
      for (std::size_t i = 0; i < nshow; ++i) {
        const int j = single[i];
        const bool has_global = im.has_global && j >= npoi && params[j].constrained;
        os << "  " << Pad(params[j].name, wname, true) << Pad(Fixed(im.nominal(t, j), dec), wcol)
           << (im.has_global ? Pad(has_global ? Fixed(im.global_nuisance(t, j), dec) : "-", wcol)
                             : "")
           << "\n";
      }
    }
  }
}

void PrintCombinations(std::ostream& os, const engine::Likelihood& likelihood,
                       const std::vector<engine::LinearCombination>& combinations,
                       const std::vector<engine::CombinationResult>& results) {
  const auto& params = likelihood.params();
  os << "\ncombinations:\n";
  for (std::size_t k = 0; k < results.size() && k < combinations.size(); ++k) {
    const auto& r = results[k];
    std::string unit;
    const double scale = CombinationScale(likelihood, combinations[k], &unit);
    os << "  " << r.name << " = " << r.expression << " = ";
    if (scale > 0.0)
      os << FormatPhysical(r.value, r.error, scale, unit) << " ("
         << FormatPhysical(r.value, r.error, 1.0, "") << ")";
    else
      os << FormatPhysical(r.value, r.error, 1.0, "");
    os << "\n";
    if (!r.correlations.empty()) {
      os << "    correlation with";
      for (std::size_t i = 0; i < r.correlations.size(); ++i)
        os << (i ? ", " : " ") << params[r.correlations[i].first].name << " "
           << Printf("%+.3f", r.correlations[i].second);
      os << "\n";
    }
  }
}

void PrintCorrelationMatrix(std::ostream& os, const engine::Likelihood& likelihood,
                            const engine::FitResult& result, const std::vector<int>& indices,
                            int max_print) {
  const auto& params = likelihood.params();
  const int n = likelihood.num_params();
  Eigen::MatrixXd corr;  // [indices x indices]
  if (result.covariance.rows() == n && result.covariance.cols() == n) {
    corr = result.CorrelationOf(indices);
  } else {
    // The selected covariance: available when every index is a covariance target.
    for (int i : indices)
      if (std::find(result.covariance_row_params.begin(), result.covariance_row_params.end(), i) ==
              result.covariance_row_params.end() ||
          result.covariance_rows.cols() != n) {
        os << "correlation matrix: not available (no covariance)\n";
        return;
      }
    corr = result.CorrelationOf(indices);
  }
  const std::size_t shown = std::min<std::size_t>(indices.size(), std::max(max_print, 0));
  os << "\ncorrelation matrix (" << indices.size() << " parameters";
  if (shown < indices.size()) os << ", the first " << shown << " shown; all in the results";
  os << "):\n";
  // Rows "k name", columns numbered k.
  std::vector<std::string> labels;
  std::size_t wlabel = 0;
  for (std::size_t a = 0; a < shown; ++a) {
    labels.push_back(std::to_string(a) + " " + params[indices[a]].name);
    wlabel = std::max(wlabel, labels.back().size());
  }
  os << "  " << Pad("", wlabel);
  for (std::size_t b = 0; b < shown; ++b) os << Pad(std::to_string(b), 7);
  os << "\n";
  for (std::size_t a = 0; a < shown; ++a) {
    os << "  " << Pad(labels[a], wlabel, true);
    for (std::size_t b = 0; b < shown; ++b) os << Pad(Printf("%+.3f", corr(a, b)), 7);
    os << "\n";
  }
}

void PrintSeedImpactTable(std::ostream& os, const engine::Impacts& im, int target,
                          const std::vector<ImpactRow>& rows) {
  const auto t = static_cast<Eigen::Index>(target);
  const std::string unit =
      im.target_unit[target].empty() ? "" : " (" + im.target_unit[target] + ")";
  const std::string head = "Impact" + unit;
  std::size_t width = 24;
  for (const auto& r : rows) width = std::max(width, r.label.size() + 2);
  char line[256];
  std::snprintf(line, sizeof(line), "  %-*s %18s\n", static_cast<int>(width),
                "Source of uncertainty", head.c_str());
  os << line;
  std::snprintf(line, sizeof(line), "  %-*s %9s %9s\n", static_cast<int>(width), "", "Nominal",
                im.has_global ? "Global" : "");
  os << line;
  os << "  " << std::string(width + 20, '-') << "\n";
  for (const auto& r : rows) {
    double nom2 = 0.0, glob2 = 0.0;
    bool any = false;
    for (const auto& g : r.groups) {
      const auto it = std::find(im.group_names.begin(), im.group_names.end(), g);
      if (it == im.group_names.end()) continue;
      const auto gi = static_cast<Eigen::Index>(it - im.group_names.begin());
      any = true;
      nom2 += im.grouped_nominal(t, gi) * im.grouped_nominal(t, gi);
      if (im.has_global) glob2 += im.grouped_global(t, gi) * im.grouped_global(t, gi);
    }
    if (!any) {
      std::snprintf(line, sizeof(line), "  %-*s %9s %9s\n", static_cast<int>(width),
                    r.label.c_str(), "-", im.has_global ? "-" : "");
    } else if (im.has_global) {
      std::snprintf(line, sizeof(line), "  %-*s %9.1f %9.1f\n", static_cast<int>(width),
                    r.label.c_str(), std::sqrt(nom2), std::sqrt(glob2));
    } else {
      std::snprintf(line, sizeof(line), "  %-*s %9.1f\n", static_cast<int>(width), r.label.c_str(),
                    std::sqrt(nom2));
    }
    os << line;
  }
  os << "  " << std::string(width + 20, '-') << "\n";
  if (im.has_global)
    std::snprintf(line, sizeof(line), "  %-*s %9.1f %9.1f\n", static_cast<int>(width),
                  "Total uncertainty", im.total[t], im.total[t]);
  else
    std::snprintf(line, sizeof(line), "  %-*s %9.1f\n", static_cast<int>(width),
                  "Total uncertainty", im.total[t]);
  os << line;
}

}  // namespace lepus::cli
