// Private helpers shared by the io sources: number formatting for messages and the constants of
// the file format (docs/format.md).
#pragma once

#include <charconv>
#include <cmath>
#include <string>

namespace lepus::io::detail {

// rabbit's placeholder logk for entries whose ratio to the nominal is not positive:
// ln(1e-3), i.e. the variation becomes 1e-3 of the nominal at theta = +-1.
inline const double kLogkPlaceholder = std::log(1e-3);

// Version of the meta_json schema this library writes and reads.
inline constexpr int kMetaVersion = 1;
// Version of the results HDF5 layout.
inline constexpr int kResultsVersion = 1;

// Shortest round-trip representation ("0.1", "nan", "-inf").
inline std::string Num(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, res.ptr);
}

inline std::string Quote(const std::string& s) { return "\"" + s + "\""; }

}  // namespace lepus::io::detail
