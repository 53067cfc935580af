// HistFactory hypothesis test at the size of a published likelihood (docs/performance.md
// "HistFactory workspaces"): a synthetic pyhf workspace with 3 channels, 50 bins, 4 samples and
// 97 parameters (normfactor, lumi, 30 normsys, 15 histosys, 50 staterror gammas), written to a
// temporary directory; timed in process (read + likelihood + asymptotic CLs at mu = 1) and as a
// whole `lepus hypotest` process. Not a test: prints medians, asserts nothing.
//
//   ./build/benchmarks/lepus_bench_histfactory [repeats]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lepus/engine/hypotest.h"
#include "lepus/io/reader.h"

namespace {

using Clock = std::chrono::steady_clock;

nlohmann::json MakeWorkspace(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const int nbins[3] = {16, 16, 18};
  const char* samples[4] = {"signal", "ttbar", "wjets", "other"};
  nlohmann::json ws;
  ws["version"] = "1.0.0";
  ws["channels"] = nlohmann::json::array();
  ws["observations"] = nlohmann::json::array();
  for (int c = 0; c < 3; ++c) {
    const std::string ch = "SR" + std::to_string(c);
    nlohmann::json chan{{"name", ch}, {"samples", nlohmann::json::array()}};
    std::vector<double> total(nbins[c], 0.0);
    for (int s = 0; s < 4; ++s) {
      std::vector<double> nom(nbins[c]), err(nbins[c]);
      for (int b = 0; b < nbins[c]; ++b) {
        const double x = (b + 0.5) / nbins[c];
        nom[b] = s == 0 ? 8.0 * std::exp(-0.5 * std::pow((x - 0.6) / 0.15, 2)) + 0.2
                        : (120.0 / (s + 1)) * std::exp(-2.0 * x) * (0.8 + 0.4 * u(rng));
        err[b] = nom[b] * (0.03 + 0.05 * u(rng));
        total[b] += s == 0 ? 0.5 * nom[b] : nom[b];
      }
      nlohmann::json mods = nlohmann::json::array();
      if (s == 0) mods.push_back({{"name", "mu"}, {"type", "normfactor"}, {"data", nullptr}});
      if (s != 3) mods.push_back({{"name", "lumi"}, {"type", "lumi"}, {"data", nullptr}});
      // 10 normsys per (channel, sample) drawn from 30 names; 5 histosys from 15.
      for (int k = 0; k < 10; ++k) {
        const int id = static_cast<int>(u(rng) * 30);
        const std::string name = "norm_" + std::to_string(id);
        bool seen = false;
        for (const auto& m : mods) seen = seen || m["name"] == name;
        if (seen) continue;
        const double d = 0.02 + 0.1 * u(rng);
        mods.push_back(
            {{"name", name}, {"type", "normsys"}, {"data", {{"hi", 1 + d}, {"lo", 1 - 0.8 * d}}}});
      }
      for (int k = 0; k < 5; ++k) {
        const int id = static_cast<int>(u(rng) * 15);
        const std::string name = "shape_" + std::to_string(id);
        bool seen = false;
        for (const auto& m : mods) seen = seen || m["name"] == name;
        if (seen) continue;
        std::vector<double> hi(nbins[c]), lo(nbins[c]);
        const double slope = 0.1 * (u(rng) - 0.5);
        for (int b = 0; b < nbins[c]; ++b) {
          const double x = (b + 0.5) / nbins[c] - 0.5;
          hi[b] = nom[b] * (1 + slope * x + 0.02);
          lo[b] = nom[b] * (1 - slope * x - 0.015);
        }
        mods.push_back(
            {{"name", name}, {"type", "histosys"}, {"data", {{"hi_data", hi}, {"lo_data", lo}}}});
      }
      if (s != 0)
        mods.push_back({{"name", "staterror_" + ch}, {"type", "staterror"}, {"data", err}});
      chan["samples"].push_back({{"name", samples[s]}, {"data", nom}, {"modifiers", mods}});
    }
    std::vector<double> obs(nbins[c]);
    for (int b = 0; b < nbins[c]; ++b) {
      std::poisson_distribution<long> pois(total[b]);
      obs[b] = static_cast<double>(pois(rng));
    }
    ws["channels"].push_back(chan);
    ws["observations"].push_back({{"name", ch}, {"data", obs}});
  }
  nlohmann::json lumi = {
      {"name", "lumi"}, {"auxdata", {1.0}}, {"sigmas", {0.017}}, {"bounds", {{0.9, 1.1}}}};
  nlohmann::json config = {{"poi", "mu"}, {"parameters", nlohmann::json::array({lumi})}};
  ws["measurements"] = nlohmann::json::array({{{"name", "meas"}, {"config", config}}});
  return ws;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double Min(const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }

}  // namespace

int main(int argc, char** argv) {
  const int repeats = argc > 1 ? std::max(1, std::atoi(argv[1])) : 20;
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / "lepus_bench_histfactory";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "published_like.json").string();
  {
    std::ofstream out(path);
    out << MakeWorkspace(20261202).dump(1);
  }
  std::vector<double> t_read, t_test;
  lepus::engine::HypoTestResult r;
  int npar = 0;
  long long nbins = 0;
  for (int i = 0; i < repeats; ++i) {
    const auto t0 = Clock::now();
    lepus::engine::Likelihood lik(lepus::io::ReadFitInput(path));
    const auto t1 = Clock::now();
    r = lepus::engine::HypoTest(lik, 1.0);
    const auto t2 = Clock::now();
    t_read.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    t_test.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
    npar = lik.num_params();
    nbins = lik.model().nbins;
  }
  std::printf("histfactory workspace: %lld bins, %d parameters (%s)\n", nbins, npar, path.c_str());
  std::printf("  CLs(mu=1) = %.6g (qtilde, asymptotics), status %s\n", r.cls_obs,
              lepus::engine::ToString(r.status).c_str());
  // Medians and minima: on a shared machine the median moves with the neighbours' load, the
  // minimum much less.
  std::printf(
      "  in process: read + likelihood %.2f ms (min %.2f), hypotest %.2f ms (min %.2f); medians of "
      "%d\n",
      Median(t_read), Min(t_read), Median(t_test), Min(t_test), repeats);
#ifdef LEPUS_CLI
  std::vector<double> t_proc;
  const std::string cmd =
      std::string(LEPUS_CLI) + " hypotest " + path + " --poi-value 1 > /dev/null 2>&1";
  for (int i = 0; i < repeats; ++i) {
    const auto t0 = Clock::now();
    const int rc = std::system(cmd.c_str());
    t_proc.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    if (rc != 0) {
      std::printf("  lepus hypotest failed (exit %d)\n", rc);
      return 1;
    }
  }
  std::printf(
      "  whole process `lepus hypotest`: %.1f ms median, %.1f ms min of %d (target <= 50 ms)\n",
      Median(t_proc), Min(t_proc), repeats);
#endif
  return 0;
}
