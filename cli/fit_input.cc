// The fit input and the fit of the commands that run one (fit_input.h); the version and the
// command line (command.h).
#include "fit_input.h"

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

#include "command.h"
#include "exit_codes.h"
#include "fit_report.h"
#include "lepus/io/errors.h"
#include "lepus/io/output.h"
#include "text_format.h"

#ifndef LEPUS_VERSION
#define LEPUS_VERSION "unknown"
#endif

namespace lepus::cli {

using namespace detail;

std::string Version() { return LEPUS_VERSION; }

std::string JoinCommandLine(int argc, char** argv) {
  std::string out;
  for (int i = 0; i < argc; ++i) {
    if (i) out += ' ';
    const std::string arg = argv[i];
    const bool quote =
        arg.empty() || arg.find_first_of(" \t\"'\\$*?[]()|;&<>") != std::string::npos;
    out += quote ? "'" + arg + "'" : arg;
  }
  return out;
}

engine::Model ReadInput(const std::string& path, io::ReadInfo* info,
                        const io::ReadOptions& options) {
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
  auto* name =
      sub->add_option("--patch-name", options->patch_name, "the patch of --patchset to apply")
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

void WriteText(const std::string& path, const std::string& text) {
  io::WriteFileAtomically(path, text);
}

int FitAndWrite(const engine::Likelihood& likelihood, const engine::FitOptions& options,
                const io::RunInfo& info, const std::string& json_path, const std::string& hdf5_path,
                std::ostream& report, engine::FitResult* result_out) {
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

}  // namespace lepus::cli
