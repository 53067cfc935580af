#include "likelihood_setup.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <iostream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include "args.h"

namespace lepus::cli {
namespace {

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Join(const std::vector<std::string>& names) {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) out += (i ? ", " : "") + names[i];
  return out;
}

}  // namespace

void AddVariantFlags(CLI::App* sub, VariantFlags* flags) {
  CLI::Option* chisq = sub->add_flag("--chisq-fit", flags->chisq,
                                     "diagonal chi-square fit instead of the Poisson likelihood, "
                                     "variance = the data (rabbit --chisqFit)");
  CLI::Option* cov = sub->add_flag("--covariance-fit", flags->covariance,
                                   "chi-square fit with the inverse data covariance hdata_cov_inv "
                                   "of the input (rabbit --covarianceFit)");
  chisq->excludes(cov);
  sub->add_flag(
      "--chisq-data-var", flags->use_data_var,
      "chi-square fits: take the data variance from hdata_var (weighted data) instead of the data "
      "(rabbit uses the data)");
  sub->add_option(
         "--bin-by-bin-stat-type", flags->bb_type,
         "Barlow-Beeston constraint (rabbit --binByBinStatType): gamma, normal-multiplicative, "
         "normal-additive; automatic = normal-additive for --covariance-fit, normal-multiplicative "
         "in full mode, else gamma")
      ->type_name("TYPE")
      ->capture_default_str()
      ->check(CLI::IsMember(engine::Names(engine::kBinByBinStatTypeNames)));
  sub->add_option("--bin-by-bin-stat-mode", flags->bb_mode,
                  "Barlow-Beeston parameters (rabbit --binByBinStatMode): lite = one per bin, full "
                  "= one per "
                  "bin and process (the input's hbetavariations then enter the reported yields)")
      ->type_name("MODE")
      ->capture_default_str()
      ->check(CLI::IsMember(engine::Names(engine::kBinByBinStatModeNames)));
}

void WarnUnusedInputs(const engine::Model& model, const engine::LikelihoodOptions& options) {
  if (model.beta_variations.empty()) return;
  const bool used = options.bin_by_bin_stat &&
                    options.bin_by_bin_stat_mode == engine::BinByBinStatMode::kFull &&
                    options.bin_by_bin_stat_type != engine::BinByBinStatType::kNormalAdditive;
  if (used) return;
  const bool full =
      options.bin_by_bin_stat && options.bin_by_bin_stat_mode == engine::BinByBinStatMode::kFull;
  std::cerr << "lepus: warning: hbetavariations (variations of the Barlow-Beeston parameters) has "
               "no effect "
               "here: rabbit applies it only with --binByBinStatMode full and a multiplicative "
               "type, to the "
               "reported yields (never to the likelihood); "
            << (!options.bin_by_bin_stat ? "bin-by-bin statistics are off (--no-bbstat)"
                : full ? "use --bin-by-bin-stat-type normal-multiplicative or gamma"
                       : "use --bin-by-bin-stat-mode full")
            << "\n";
}

void ApplyVariantFlags(const VariantFlags& flags, engine::LikelihoodOptions* options) {
  options->data_term = flags.covariance
                           ? engine::DataTerm::kCovariance
                           : (flags.chisq ? engine::DataTerm::kChisq : engine::DataTerm::kPoisson);
  options->bin_by_bin_stat_type = engine::BinByBinStatTypeFromString(flags.bb_type);
  options->bin_by_bin_stat_mode = engine::BinByBinStatModeFromString(flags.bb_mode);
  options->use_data_var = flags.use_data_var;
  if (flags.use_data_var && !flags.chisq && !flags.covariance)
    throw std::invalid_argument("--chisq-data-var needs --chisq-fit or --covariance-fit");
}

void AddLikelihoodFlags(CLI::App* sub, LikelihoodFlags* flags) {
  sub->add_flag("--no-bbstat", flags->no_bbstat, "disable bin-by-bin MC statistics");
  sub->add_flag("--poi-positive", flags->poi_positive,
                "parametrise signal strengths as mu = x^2 (mu >= 0)");
  sub->add_option("--threads", flags->threads, "worker threads (0 = all cores)")
      ->type_name("N")
      ->transform(IntegerArg(0, 4096));
  AddVariantFlags(sub, &flags->variant);
}

void AddDataFlags(CLI::App* sub, DataFlags* flags) {
  CLI::Option* asimov =
      sub->add_flag("--asimov", flags->asimov, "use the Asimov data set at the prefit values");
  CLI::Option* pseudo =
      sub->add_option("--pseudodata", flags->pseudodata, "use the named pseudo-data set")
          ->type_name("NAME");
  asimov->excludes(pseudo);
}

void AddFitFlags(CLI::App* sub, FitFlags* flags) {
  sub->add_option("--freeze", flags->freeze,
                  "freeze the parameters whose whole name matches REGEX (repeatable)")
      ->type_name("REGEX")
      ->allow_extra_args(false);
  sub->add_option("--set", flags->set,
                  "initial value NAME=VALUE (mu for POIs, theta for nuisances; repeatable)")
      ->type_name("NAME=VALUE")
      ->allow_extra_args(false);
  sub->add_option("--edm-tol", flags->edm_tolerance, "EDM convergence tolerance (> 0)")
      ->type_name("X")
      ->capture_default_str()
      ->check(PositiveArg());
  sub->add_option("--max-iter", flags->max_iterations, "maximum Newton iterations")
      ->type_name("N")
      ->capture_default_str()
      ->transform(IntegerArg(1, 1000000));
  sub->add_option(
         "--method", flags->method,
         "minimiser: dense (Newton with the dense Hessian, full covariance), matrix_free "
         "(Newton-CG with Hessian-vector products; covariance rows of the POIs/NOIs only), "
         "ceres / ceres_dogleg (Ceres Levenberg-Marquardt / dogleg on deviance residuals with "
         "sparse Cholesky, polished by exact Newton), auto (matrix_free above 20000 "
         "floating parameters)")
      ->type_name("METHOD")
      ->capture_default_str()
      ->check(CLI::IsMember(engine::Names(engine::kFitMethodNames)));
}

engine::Likelihood MakeLikelihood(const std::string& input, const LikelihoodFlags& lflags,
                                  const DataFlags& dflags, io::RunInfo* info,
                                  const FitFlags* fflags) {
  engine::Model model = ReadInput(input, nullptr, lflags.read);
  engine::LikelihoodOptions lopt;
  lopt.bin_by_bin_stat = !lflags.no_bbstat;
  lopt.poi_positive = lflags.poi_positive;
  lopt.num_threads = lflags.threads;
  ApplyVariantFlags(lflags.variant, &lopt);
  std::string error;
  if (!lopt.IsValid(&error)) throw std::invalid_argument("likelihood options: " + error);
  WarnUnusedInputs(model, lopt);
  info->input_path = input;
  info->num_threads = lflags.threads;
  info->data_label = "observed";

  Eigen::VectorXd pseudo;
  if (!dflags.pseudodata.empty()) {
    const auto& names = model.pseudodata_names;
    const auto it = std::find(names.begin(), names.end(), dflags.pseudodata);
    if (it == names.end())
      throw std::invalid_argument("--pseudodata: " + input + " has no pseudo-data set named '" +
                                  dflags.pseudodata + "' " +
                                  (names.empty() ? std::string("(the file has no pseudo-data)")
                                                 : "(available: " + Join(names) + ")"));
    pseudo = model.pseudodata.col(it - names.begin());
    info->data_label = "pseudodata:" + dflags.pseudodata;
  }
  engine::Likelihood lik(std::move(model), lopt);
  if (dflags.asimov) {
    // At the prefit point moved to any --set values (as in lepus fit).
    // MakeFitOptions leaves initial_params empty without --set: then the prefit point.
    Eigen::VectorXd x = fflags ? MakeFitOptions(lik, *fflags).initial_params : Eigen::VectorXd();
    if (x.size() == 0) x = lik.InitialParams();
    lik.SetData(engine::AsimovData(lik, x));
    info->data_label = "asimov";
  } else if (pseudo.size()) {
    lik.SetData(pseudo);
  }
  return lik;
}

int FindParamOrThrow(const engine::Likelihood& likelihood, const std::string& name,
                     const std::string& flag) {
  const int i = likelihood.FindParam(name);
  if (i >= 0) return i;
  const auto& params = likelihood.params();
  std::vector<std::string> similar;
  for (const auto& p : params)
    if (!name.empty() && Lower(p.name).find(Lower(name)) != std::string::npos)
      similar.push_back(p.name);
  std::string hint;
  constexpr std::size_t kMax = 8;
  if (!similar.empty()) {
    if (similar.size() > kMax) similar.resize(kMax), similar.push_back("...");
    hint = "similar: " + Join(similar);
  } else {
    std::vector<std::string> some;
    for (std::size_t k = 0; k < params.size() && k < kMax; ++k) some.push_back(params[k].name);
    hint = "parameters: " + Join(some);
    if (params.size() > kMax) hint += ", ... (" + std::to_string(params.size()) + " in total)";
  }
  throw std::invalid_argument(flag + ": no parameter named '" + name + "' (" + hint + ")");
}

}  // namespace lepus::cli
