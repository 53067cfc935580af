// Fuzz target: the JSON configuration readers of the producers and the calibration file reader,
// each fed the same text, followed by the validation the CLI runs on the result (IsValid).
//   * models::WMassConfigFromJson (produce wmass / wlike / helicity: "producer" selects) for both
//     default analyses;
//   * models::DileptonConfigFromJson (produce dilepton);
//   * models::CalibrationFromJson (--calibration files of the producers, calibrate zclosure).
// Documented outcomes: a configuration, std::invalid_argument (configurations) or io::InputError
// (calibrations). Seeds: tests/fuzz/corpus/config_json (`lepus produce ... --print-config`
// and a calibration file).
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "fuzz_util.h"
#include "lepus/io/errors.h"
#include "lepus/models/calibration.h"
#include "lepus/models/dilepton.h"
#include "lepus/models/wmass.h"

namespace {

template <typename F>
void Expect(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    lepus::fuzz::Verbose(e);
  } catch (const lepus::io::InputError& e) {
    lepus::fuzz::Verbose(e);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  namespace m = lepus::models;
  for (const m::WMassAnalysis analysis : {m::WMassAnalysis::kWMass, m::WMassAnalysis::kWLike}) {
    Expect([&] {
      const m::WMassConfig c = m::WMassConfigFromJson(text, "fuzz.json", analysis);
      std::string error;
      if (c.IsValid(&error)) (void)c.ToJson();
    });
  }
  Expect([&] {
    const m::DileptonConfig c = m::DileptonConfigFromJson(text, "fuzz.json");
    std::string error;
    if (c.IsValid(&error)) (void)c.ToJson();
  });
  Expect([&] {
    const m::CalibrationParameters c = m::CalibrationFromJson(text, "fuzz.json");
    (void)m::CalibrationToJson(c);
  });
  return 0;
}
