#include <cmath>
#include <string>

#include <doctest/doctest.h>

#include "lepus/engine/model.h"
#include "lepus/models/synthetic.h"

using lepus::engine::Model;
using lepus::engine::Tensor;

TEST_CASE("Tensor::FromDense keeps non-zero rows and entries in order") {
  // 2 bins x 2 processes x 3 systematics
  const std::vector<double> norm{1.0, 0.0, 2.0, 3.0};
  std::vector<double> logk(12, 0.0);
  logk[0 * 3 + 1] = 0.1;   // (bin 0, proc 0, syst 1)
  logk[3 * 3 + 0] = -0.2;  // (bin 1, proc 1, syst 0)
  logk[3 * 3 + 2] = 0.3;
  Tensor t = Tensor::FromDense(2, 2, 3, norm, logk, {});
  REQUIRE(t.num_rows() == 3);  // (0,1) has zero norm and no logk: dropped
  CHECK(t.row_bin == std::vector<std::int32_t>{0, 1, 1});
  CHECK(t.row_proc == std::vector<std::int32_t>{0, 0, 1});
  CHECK(t.row_start == std::vector<std::int64_t>{0, 1, 1, 3});
  CHECK(t.syst == std::vector<std::int32_t>{1, 0, 2});
  CHECK(t.logk_avg == std::vector<double>{0.1, -0.2, 0.3});
  CHECK_THROWS_AS(Tensor::FromDense(2, 2, 3, {1.0}, logk, {}), std::invalid_argument);
}

TEST_CASE("Model::IsValid names the field, the value and the constraint") {
  lepus::models::SyntheticSpec spec;
  spec.nmasked = 2;
  Model good = lepus::models::MakeSyntheticModel(spec);
  std::string err;
  REQUIRE(good.IsValid(&err));

  Model m = good;
  m.data_obs[4] = std::nan("");
  CHECK_FALSE(m.IsValid(&err));
  CHECK(err.find("data_obs[4] is nan") != std::string::npos);

  m = good;
  m.constraint_weights[1] = -1;
  CHECK_FALSE(m.IsValid(&err));
  CHECK(err.find("constraint_weights[1] is -1, but must be finite and >= 0") != std::string::npos);

  m = good;
  m.tensor.syst[0] = 99;
  CHECK_FALSE(m.IsValid(&err));
  CHECK(err.find("syst[0] is 99") != std::string::npos);

  m = good;
  m.tensor.norm[0] = -5;  // log-normal logk non-zero on a negative nominal
  CHECK_FALSE(m.IsValid(&err));
  CHECK(err.find("must be > 0 where log-normal logk is non-zero") != std::string::npos);

  m = good;
  std::swap(m.channels[0], m.channels[1]);
  CHECK_FALSE(m.IsValid(&err));
  CHECK(err.find("masked channels must come last") != std::string::npos);

  m = good;
  m.noi_indices = {42};
  CHECK_FALSE(m.IsValid(&err));
  CHECK(err.find("noi_indices[0] is 42") != std::string::npos);
}

TEST_CASE("systematic type strings round-trip") {
  using lepus::engine::SystematicType;
  CHECK(lepus::engine::SystematicTypeFromString("log_normal") == SystematicType::kLogNormal);
  CHECK(lepus::engine::SystematicTypeFromString(lepus::engine::ToString(SystematicType::kNormal)) ==
        SystematicType::kNormal);
  CHECK_THROWS_WITH_AS(lepus::engine::SystematicTypeFromString("gaussian"),
                       doctest::Contains("gaussian"), std::invalid_argument);
}
