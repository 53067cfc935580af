#include "lepus/io/hypotest_json.h"

#include <cmath>

namespace lepus::io {

namespace {

nlohmann::json Number(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

nlohmann::json Band(const std::array<double, 5>& v) {
  nlohmann::json a = nlohmann::json::array();
  for (double x : v) a.push_back(Number(x));
  return a;
}

}  // namespace

nlohmann::json HypoTestJson(const engine::HypoTestResult& r) {
  nlohmann::json j;
  j["poi_value"] = r.poi_value;
  j["status"] = engine::ToString(r.status);
  j["message"] = r.message;
  j["q_obs"] = Number(r.q_obs);
  j["q_asimov"] = Number(r.q_asimov);
  j["mu_hat"] = Number(r.mu_hat);
  j["nll_free"] = Number(r.nll_free);
  j["nll_conditional"] = Number(r.nll_conditional);
  j["cls_obs"] = Number(r.cls_obs);
  j["clsb_obs"] = Number(r.clsb_obs);
  j["clb_obs"] = Number(r.clb_obs);
  j["cls_exp"] = Band(r.cls_exp);
  j["clsb_exp"] = Band(r.clsb_exp);
  j["clb_exp"] = Band(r.clb_exp);
  j["p_value"] = Number(r.p_value);
  j["significance"] = Number(r.significance);
  if (r.calculator == engine::HypoCalculator::kToys) {
    j["failed_toys_sb"] = r.failed_sb;
    j["failed_toys_b"] = r.failed_b;
  }
  return j;
}

nlohmann::json UpperLimitJson(const engine::UpperLimitResult& r) {
  nlohmann::json j;
  j["cl"] = r.cl;
  j["status"] = engine::ToString(r.status);
  j["message"] = r.message;
  j["observed"] = Number(r.observed);
  j["expected"] = Band(r.expected);
  j["mu_hat"] = Number(r.mu_hat);
  j["evaluations"] = r.evaluations;
  return j;
}

}  // namespace lepus::io
