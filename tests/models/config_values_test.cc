// Numbers in the JSON configuration readers (docs/reliability.md, "Arguments and configuration values"):
// a number beyond the range of a double (1e400) is an input error naming the file and the number
// (nlohmann_json throws out_of_range 406 while parsing: before, that escaped the readers as an
// internal error), integers are range-checked without wrapping, and seeds keep the full unsigned
// 64-bit range bit for bit. Messages name the file and, after parsing, the key path.
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

#include <doctest/doctest.h>

#include "lepus/io/errors.h"
#include "lepus/models/calibration.h"
#include "lepus/models/dilepton.h"
#include "lepus/models/wmass.h"

using namespace lepus::models;

namespace {
constexpr std::uint64_t kMaxSeed = std::numeric_limits<std::uint64_t>::max();
}

TEST_CASE("WMassConfig JSON: numbers beyond a double are input errors naming the file") {
  auto parse = [](const std::string& body) {
    return WMassConfigFromJson(R"({"lepus_config_version": 1, )" + body + "}", "cfg.json");
  };
  CHECK_THROWS_WITH_AS(
      parse(R"("selection": {"mt_cut": 1e400})"),
      doctest::Contains(
          "cfg.json: a number is beyond the range of a double (at most 1.8e308 in magnitude): "
          "[json.exception.out_of_range.406] number overflow parsing '1e400'"),
      std::invalid_argument);
  CHECK_THROWS_WITH_AS(
      parse(R"("luminosity_pb": -1e400)"),
      doctest::Contains(
          "cfg.json: a number is beyond the range of a double (at most 1.8e308 in magnitude): "
          "[json.exception.out_of_range.406] number overflow parsing '-1e400'"),
      std::invalid_argument);
  CHECK_THROWS_WITH_AS(
      parse(R"("data": {"mw_shift_mev": 1e999})"),
      doctest::Contains(
          "cfg.json: a number is beyond the range of a double (at most 1.8e308 in magnitude): "
          "[json.exception.out_of_range.406] number overflow parsing '1e999'"),
      std::invalid_argument);
  CHECK_THROWS_WITH_AS(
      parse(R"("systematics": {"efficiency": {"syst_eta_edges": [0, 1e400]}})"),
      doctest::Contains(
          "cfg.json: a number is beyond the range of a double (at most 1.8e308 in magnitude): "
          "[json.exception.out_of_range.406] number overflow parsing '1e400'"),
      std::invalid_argument);
  // The largest finite double is still a number (then checked by the configuration's ranges).
  CHECK_THROWS_WITH_AS(parse(R"("luminosity_pb": -1.7e308)"), doctest::Contains("luminosity_pb"),
                       std::invalid_argument);
}

TEST_CASE("WMassConfig JSON: integers do not wrap") {
  auto parse = [](const std::string& body) {
    return WMassConfigFromJson(R"({"lepus_config_version": 1, )" + body + "}", "cfg.json");
  };
  // 2^64 - 1 read as a signed integer would be -1.
  CHECK_THROWS_WITH_AS(parse(R"("binning": {"eta_bins": 18446744073709551615})"),
                       doctest::Contains("cfg.json: binning.eta_bins is 18446744073709551615 "
                                         "(integer), but must be an integer in [1, 48]"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(parse(R"("simulation": {"events": -5})"),
                       doctest::Contains("cfg.json: simulation.events is -5 (integer), but must "
                                         "be a non-negative integer"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(parse(R"("simulation": {"seed": -1})"),
                       doctest::Contains("cfg.json: simulation.seed is -1 (integer), but must be "
                                         "a non-negative integer"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(parse(R"("simulation": {"seed": 1.5})"),
                       doctest::Contains("simulation.seed is 1.5 (number)"), std::invalid_argument);
  // Beyond 2^64 - 1, nlohmann_json reads a float: not an integer seed.
  CHECK_THROWS_WITH_AS(parse(R"("data": {"seed": 18446744073709551616})"),
                       doctest::Contains("data.seed is"), std::invalid_argument);
}

TEST_CASE("WMassConfig JSON: seeds keep the full unsigned 64-bit range") {
  const WMassConfig c = WMassConfigFromJson(
      R"({"lepus_config_version": 1, "simulation": {"seed": 18446744073709551615},
          "data": {"seed": 9223372036854775808}})",
      "cfg.json");
  CHECK(c.simulation.seed == kMaxSeed);
  CHECK(c.data.seed == (std::uint64_t{1} << 63));
  // Written as unsigned JSON integers and read back bit for bit.
  const std::string json = c.ToJson();
  CHECK(json.find("18446744073709551615") != std::string::npos);
  CHECK(json.find("9223372036854775808") != std::string::npos);
  const WMassConfig back = WMassConfigFromJson(json, "printed.json");
  CHECK(back.simulation.seed == kMaxSeed);
  CHECK(back.data.seed == (std::uint64_t{1} << 63));
}

TEST_CASE("DileptonConfig JSON: numbers beyond a double, full-range seeds") {
  auto parse = [](const std::string& body) {
    return DileptonConfigFromJson(R"({"lepus_config_version": 1, )" + body + "}", "dl.json");
  };
  CHECK_THROWS_WITH_AS(
      parse(R"("luminosity_pb": 1e400)"),
      doctest::Contains(
          "dl.json: a number is beyond the range of a double (at most 1.8e308 in magnitude): "
          "[json.exception.out_of_range.406] number overflow parsing '1e400'"),
      std::invalid_argument);
  CHECK_THROWS_WITH_AS(
      parse(R"("binning": {"mass_edges": [60, 1e400]})"),
      doctest::Contains(
          "dl.json: a number is beyond the range of a double (at most 1.8e308 in magnitude): "
          "[json.exception.out_of_range.406] number overflow parsing '1e400'"),
      std::invalid_argument);
  const DileptonConfig c = parse(R"("simulation": {"seed": 18446744073709551615})");
  CHECK(c.simulation.seed == kMaxSeed);
  CHECK(DileptonConfigFromJson(c.ToJson(), "printed.json").simulation.seed == kMaxSeed);
}

TEST_CASE("Calibration file: numbers beyond a double are input errors naming the file") {
  const std::string ok = R"({"schema": "lepus-muon-calibration", "schema_version": 1,
      "eta_edges": [-2.4, 0, 2.4], "A": [1e-4, 2e-4], "e": [0, 0], "M": [0, 0],
      "covariance": [[1e-8,0,0,0,0,0],[0,1e-8,0,0,0,0],[0,0,1e-8,0,0,0],
                     [0,0,0,1e-8,0,0],[0,0,0,0,1e-8,0],[0,0,0,0,0,1e-8]]})";
  REQUIRE(CalibrationFromJson(ok, "cal.json").params.size() == 2);
  auto with = [&](const std::string& from, const std::string& to) {
    std::string t = ok;
    t.replace(t.find(from), from.size(), to);
    return t;
  };
  CHECK_THROWS_WITH_AS(
      CalibrationFromJson(with("\"A\": [1e-4", "\"A\": [1e400"), "cal.json"),
      doctest::Contains(
          "cal.json: a number is beyond the range of a double (at most 1.8e308 in magnitude): "
          "[json.exception.out_of_range.406] number overflow parsing '1e400'"),
      lepus::io::InputError);
  CHECK_THROWS_WITH_AS(
      CalibrationFromJson(with("[-2.4, 0, 2.4]", "[-1e400, 0, 2.4]"), "cal.json"),
      doctest::Contains(
          "cal.json: a number is beyond the range of a double (at most 1.8e308 in magnitude): "
          "[json.exception.out_of_range.406] number overflow parsing '-1e400'"),
      lepus::io::InputError);
  CHECK_THROWS_WITH_AS(
      CalibrationFromJson(with("[[1e-8,0", "[[1e999,0"), "cal.json"),
      doctest::Contains(
          "cal.json: a number is beyond the range of a double (at most 1.8e308 in magnitude): "
          "[json.exception.out_of_range.406] number overflow parsing '1e999'"),
      lepus::io::InputError);
}
