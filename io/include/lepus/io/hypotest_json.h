// JSON of hypothesis tests and upper limits (engine/hypotest.h), the one definition shared by
// `lepus hypotest --json`, `lepus limit --json` and the Python bindings (Model.hypotest,
// Model.upper_limit). Numbers that are not finite (not defined, or a failed test) are null.
#pragma once

#include <nlohmann/json.hpp>

#include "lepus/engine/hypotest.h"

namespace lepus::io {

// poi_value, status, message, q_obs, q_asimov, mu_hat, nll_free, nll_conditional, cls_obs,
// clsb_obs, clb_obs, cls_exp / clsb_exp / clb_exp (five numbers, -2 sigma first), p_value,
// significance; toys: failed_toys_sb, failed_toys_b.
nlohmann::json HypoTestJson(const engine::HypoTestResult& result);

// cl, status, message, observed, expected (five limits, -2 sigma first), mu_hat, evaluations.
nlohmann::json UpperLimitJson(const engine::UpperLimitResult& result);

}  // namespace lepus::io
