#include "common.h"

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

#ifndef LEPUS_VERSION
#define LEPUS_VERSION "unknown"
#endif

namespace lepus::cli {
namespace {

std::string Printf(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), fmt, v);
  return buf;
}

std::string Num(double v) {
  if (!std::isfinite(v)) return "-";
  return Printf("%.5g", v);
}

std::string Pad(const std::string& s, std::size_t width, bool left = false) {
  if (s.size() >= width) return s;
  const std::string fill(width - s.size(), ' ');
  return left ? s + fill : fill + s;
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// A short listing of parameter names for error messages: the names that contain `near`
// (case-insensitive) if there are any, else the first few.
std::string SomeNames(const std::vector<engine::ParamInfo>& params, const std::string& near = "",
                      std::size_t max = 8) {
  std::vector<std::string> similar;
  if (!near.empty())
    for (const auto& p : params)
      if (Lower(p.name).find(Lower(near)) != std::string::npos) similar.push_back(p.name);
  std::string out;
  if (!similar.empty()) {
    out = "similar: ";
    for (std::size_t i = 0; i < similar.size() && i < max; ++i)
      out += (i ? ", " : "") + similar[i];
    if (similar.size() > max) out += ", ...";
    return out;
  }
  out = "parameters: ";
  for (std::size_t i = 0; i < params.size() && i < max; ++i)
    out += (i ? ", " : "") + params[i].name;
  if (params.size() > max) out += ", ... (" + std::to_string(params.size()) + " in total)";
  return out;
}

double ParseDouble(const std::string& text, const std::string& what) {
  std::size_t used = 0;
  double v = 0.0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || !std::isfinite(v))
    throw std::invalid_argument(what + " is '" + text + "', but must be a finite number");
  return v;
}

}  // namespace

std::string Version() { return LEPUS_VERSION; }

std::string JoinCommandLine(int argc, char** argv) {
  std::string out;
  for (int i = 0; i < argc; ++i) {
    if (i) out += ' ';
    const std::string arg = argv[i];
    const bool quote = arg.empty() || arg.find_first_of(" \t\"'\\$*?[]()|;&<>") != std::string::npos;
    out += quote ? "'" + arg + "'" : arg;
  }
  return out;
}

engine::Model ReadInput(const std::string& path, io::ReadInfo* info, const io::ReadOptions& options) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const auto st = fs::status(path, ec);
  if (ec || !fs::exists(st)) throw io::InputError(path + ": no such file");
  if (fs::is_directory(st)) throw io::InputError(path + ": is a directory, not a fit input file");
  io::ReadInfo local;
  io::ReadInfo* ri = info ? info : &local;
  engine::Model model = io::ReadFitInput(path, ri, options);
  for (const std::string& w : ri->warnings) std::cerr << "lepus: warning: " << w << "\n";
  return model;
}

void AddWorkspaceFlags(CLI::App* sub, io::ReadOptions* options) {
  const char* group = "HistFactory JSON workspaces";
  sub->add_option("--patch", options->patches,
                  "apply this JSON Patch (RFC 6902) file to the workspace (repeatable, in order)")
      ->type_name("FILE")
      ->allow_extra_args(false)
      ->group(group);
  auto* patchset = sub->add_option("--patchset", options->patchset,
                                   "HEPData patchset file; applies its patch --patch-name "
                                   "(after the --patch files)")
                       ->type_name("FILE")
                       ->group(group);
  auto* name = sub->add_option("--patch-name", options->patch_name, "the patch of --patchset to apply")
                   ->type_name("NAME")
                   ->group(group);
  patchset->needs(name);
  name->needs(patchset);
  sub->add_option("--measurement", options->measurement,
                  "the workspace measurement to use (default: the first)")
      ->type_name("NAME")
      ->group(group);
  sub->add_option("--normsys-interp", options->normsys_interp, "normsys interpolation")
      ->type_name("CODE")
      ->capture_default_str()
      ->check(CLI::IsMember({"code1", "code4"}))
      ->group(group);
  sub->add_option("--histosys-interp", options->histosys_interp, "histosys interpolation")
      ->type_name("CODE")
      ->capture_default_str()
      ->check(CLI::IsMember({"code0", "code4p"}))
      ->group(group);
}

engine::FitOptions MakeFitOptions(const engine::Likelihood& likelihood, const FitFlags& flags) {
  engine::FitOptions options;
  options.edm_tolerance = flags.edm_tolerance;
  options.max_iterations = flags.max_iterations;
  options.method = engine::FitMethodFromString(flags.method);
  const auto& params = likelihood.params();
  const int n = likelihood.num_params();

  if (!flags.freeze.empty()) {
    options.frozen.assign(n, false);
    for (const std::string& pattern : flags.freeze) {
      std::regex re;
      try {
        re = std::regex(pattern, std::regex::ECMAScript);
      } catch (const std::regex_error& e) {
        throw std::invalid_argument("--freeze: '" + pattern +
                                    "' is not a valid regular expression (" + e.what() + ")");
      }
      int matched = 0;
      for (int i = 0; i < n; ++i) {
        if (std::regex_match(params[i].name, re)) {
          options.frozen[i] = true;
          ++matched;
        }
      }
      if (matched == 0)
        throw std::invalid_argument("--freeze: pattern '" + pattern +
                                    "' matches no parameter name (it must match a whole name; " +
                                    SomeNames(params) + ")");
    }
  }

  if (!flags.set.empty()) {
    options.initial_params = likelihood.InitialParams();
    for (const std::string& item : flags.set) {
      const auto eq = item.find('=');
      if (eq == std::string::npos || eq == 0)
        throw std::invalid_argument("--set: '" + item + "' is not of the form NAME=VALUE");
      const std::string name = item.substr(0, eq);
      const double value = ParseDouble(item.substr(eq + 1), "--set " + name);
      const int i = likelihood.FindParam(name);
      if (i < 0)
        throw std::invalid_argument("--set: no parameter named '" + name + "' (" +
                                    SomeNames(params, name) + ")");
      double x = value;
      if (params[i].kind == engine::ParamKind::kPoi && likelihood.options().poi_positive) {
        // Internal coordinate of a positive POI is sqrt(mu).
        if (value < 0.0)
          throw std::invalid_argument("--set " + name + " is " + item.substr(eq + 1) +
                                      ", but must be >= 0 with --poi-positive");
        x = std::sqrt(value);
      }
      options.initial_params[i] = x;
    }
  }

  std::string error;
  if (!options.IsValid(n, &error)) throw std::invalid_argument("fit options: " + error);
  return options;
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

void WriteText(const std::string& path, const std::string& text) {
  io::WriteFileAtomically(path, text);
}

// ---- Inference toolkit of `lepus fit` -------------------------------------------------------

double ParseNumber(const std::string& text, const std::string& what) {
  return ParseDouble(text, what);
}

namespace {

// NAME=VALUE split at the first '='; NAME must not be empty.
std::pair<std::string, std::string> SplitAssignment(const std::string& item,
                                                    const std::string& flag,
                                                    const std::string& form) {
  const auto eq = item.find('=');
  if (eq == std::string::npos || eq == 0)
    throw std::invalid_argument(flag + ": '" + item + "' is not of the form " + form);
  return {item.substr(0, eq), item.substr(eq + 1)};
}

// Fixed-point with `decimals` digits after the point; "-" for non-finite numbers.
std::string Fixed(double v, int decimals) {
  if (!std::isfinite(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

// Decimals that show three significant digits of `reference` (e.g. 8.23, 0.0111).
int DecimalsFor(double reference) {
  if (!std::isfinite(reference) || !(reference > 0.0)) return 4;
  return std::clamp(2 - static_cast<int>(std::floor(std::log10(reference))), 0, 12);
}

}  // namespace

std::vector<engine::SystematicGroup> ParseGroupFlags(const engine::Model& model,
                                                     const std::vector<std::string>& items) {
  std::vector<engine::SystematicGroup> groups;
  for (const std::string& item : items) {
    const auto [name, pattern] = SplitAssignment(item, "--group", "NAME=REGEX");
    const std::string where = "--group: group " + name;
    if (pattern.empty()) throw std::invalid_argument(where + ": the pattern is empty");
    if (name == "stat" || name == "binByBinStat" || name == "Total")
      throw std::invalid_argument(where + ": the name is reserved (rows stat, binByBinStat, Total)");
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
      throw std::invalid_argument(where + ": pattern '" + pattern +
                                  "' matches no systematic (it must match a whole name; " +
                                  (some.empty() ? std::string("the input has no systematics")
                                                : "systematics: " + some) +
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
      os << "  binByBinStat_fullcov (sqrt(Total^2 - Total^2[beta fixed]), every nuisance floating): "
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
        os << "  " << Pad(params[j].name, wname, true)
           << Pad(Fixed(im.nominal(t, j), dec), wcol)
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
              result.covariance_row_params.end() || result.covariance_rows.cols() != n) {
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
    for (std::size_t b = 0; b < shown; ++b)
      os << Pad(Printf("%+.3f", corr(a, b)), 7);
    os << "\n";
  }
}

bool CovarianceUntrusted(const engine::FitResult& r) {
  return r.covariance_status == engine::CovarianceStatus::kNearSingular ||
         r.covariance_status == engine::CovarianceStatus::kForcedPositive;
}

std::string WhyNoCovariance(const engine::FitResult& r) {
  if (!r.ok())
    return "the fit did not converge (" + engine::ToString(r.status) +
           (r.message.empty() ? "" : ": " + r.message) + ")";
  switch (r.covariance_status) {
    case engine::CovarianceStatus::kAccurate: return "the fit's covariance is accurate";
    case engine::CovarianceStatus::kTargetsOnly:
      return "the matrix-free fit computes the covariance rows of the POIs and NOIs only "
             "(use --method dense)";
    case engine::CovarianceStatus::kAccurateSelected:
      return "the fit computed the errors and the covariance rows of the POIs and NOIs only "
             "(use --full-covariance)";
    case engine::CovarianceStatus::kNotComputed: return "the fit computed no covariance";
    default: break;
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
    os << p.name << " = " << FormatPhysical(r.values[i], r.errors.size() == n && !CovarianceUntrusted(r) ? r.errors[i] : NAN,
                                            p.scale, p.unit)
       << "\n";
  }

  os << "\nfit status: " << engine::ToString(r.status);
  if (!r.message.empty()) os << " (" << r.message << ")";
  os << "\n  NLL " << Printf("%.6f", r.nll) << ", EDM " << Printf("%.3g", r.edm) << ", "
     << r.iterations << " iterations, " << r.evaluations << " evaluations\n";
  os << "  covariance: " << engine::ToString(r.covariance_status);
  if (std::isfinite(r.nll))
    os << " (Hessian " << (r.hessian_positive_definite ? "positive definite" : "NOT positive definite") << ")";
  else
    os << " (no finite NLL: no minimum to describe)";
  os << "\n";
  if (!r.covariance_message.empty()) os << "  " << r.covariance_message << "\n";
  if (CovarianceUntrusted(r))
    os << "  errors not shown (-): the covariance is not reliable; they are still written to "
          "the JSON/HDF5 output with covariance_status " << engine::ToString(r.covariance_status) << "\n";
  os << "  saturated goodness of fit: chi2/ndf = " << Printf("%.2f", r.gof_chi2) << "/"
     << r.gof_ndf << ", p = " << Printf("%.3g", r.gof_p) << "\n";
  os << "  time: total " << Printf("%.3f", r.time_total) << " s (evaluation "
     << Printf("%.3f", r.time_evaluation) << ", linear algebra "
     << Printf("%.3f", r.time_linear_algebra) << ", covariance "
     << Printf("%.3f", r.time_covariance) << ")\n";
}

int FitAndWrite(const engine::Likelihood& likelihood, const engine::FitOptions& options,
                const io::RunInfo& info, const std::string& json_path,
                const std::string& hdf5_path, std::ostream& report,
                engine::FitResult* result_out) {
  engine::FitResult result = engine::Fit(likelihood, options);
  PrintFitReport(report, likelihood, result);
  report << std::flush;
  if (!json_path.empty()) WriteText(json_path, io::ResultsJson(likelihood, result, info) + "\n");
  if (!hdf5_path.empty()) io::WriteResultsHdf5(hdf5_path, likelihood, result, info);
  const bool ok = result.ok() && !CovarianceUntrusted(result);
  if (!result.ok())
    std::cerr << "lepus: fit did not converge: " << engine::ToString(result.status)
              << (result.message.empty() ? "" : " (" + result.message + ")") << "\n";
  else if (!ok)
    std::cerr << "lepus: the fit converged, but " << WhyNoCovariance(result)
              << "; the errors are not reliable\n";
  if (result_out) *result_out = std::move(result);
  return ok ? kExitOk : kExitFitFailed;
}

void PrintSeedImpactTable(std::ostream& os, const engine::Impacts& im, int target,
                          const std::vector<ImpactRow>& rows) {
  const auto t = static_cast<Eigen::Index>(target);
  const std::string unit = im.target_unit[target].empty() ? "" : " (" + im.target_unit[target] + ")";
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
      std::snprintf(line, sizeof(line), "  %-*s %9.1f\n", static_cast<int>(width),
                    r.label.c_str(), std::sqrt(nom2));
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
