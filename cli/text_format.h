// Private to the cli's report and flag code (fit_input.cc, fit_report.cc, toolkit.cc): number
// formatting, padding, name hints and the number parser of their messages and tables.
#pragma once

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "lepus/engine/likelihood.h"

namespace lepus::cli::detail {

inline std::string Printf(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), fmt, v);
  return buf;
}

inline std::string Num(double v) {
  if (!std::isfinite(v)) return "-";
  return Printf("%.5g", v);
}

inline std::string Pad(const std::string& s, std::size_t width, bool left = false) {
  if (s.size() >= width) return s;
  const std::string fill(width - s.size(), ' ');
  return left ? s + fill : fill + s;
}

inline std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// A short listing of parameter names for error messages: the names that contain `near`
// (case-insensitive) if there are any, else the first few.
inline std::string SomeNames(const std::vector<engine::ParamInfo>& params,
                             const std::string& near = "", std::size_t max = 8) {
  std::vector<std::string> similar;
  if (!near.empty())
    for (const auto& p : params)
      if (Lower(p.name).find(Lower(near)) != std::string::npos) similar.push_back(p.name);
  std::string out;
  if (!similar.empty()) {
    out = "similar: ";
    for (std::size_t i = 0; i < similar.size() && i < max; ++i) out += (i ? ", " : "") + similar[i];
    if (similar.size() > max) out += ", ...";
    return out;
  }
  out = "parameters: ";
  for (std::size_t i = 0; i < params.size() && i < max; ++i)
    out += (i ? ", " : "") + params[i].name;
  if (params.size() > max) out += ", ... (" + std::to_string(params.size()) + " in total)";
  return out;
}

inline double ParseDouble(const std::string& text, const std::string& what) {
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

// NAME=VALUE split at the first '='; NAME must not be empty.
inline std::pair<std::string, std::string> SplitAssignment(const std::string& item,
                                                           const std::string& flag,
                                                           const std::string& form) {
  const auto eq = item.find('=');
  if (eq == std::string::npos || eq == 0)
    throw std::invalid_argument(flag + ": '" + item + "' is not of the form " + form);
  return {item.substr(0, eq), item.substr(eq + 1)};
}

// Fixed-point with `decimals` digits after the point; "-" for non-finite numbers.
inline std::string Fixed(double v, int decimals) {
  if (!std::isfinite(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

// Decimals that show three significant digits of `reference` (e.g. 8.23, 0.0111).
inline int DecimalsFor(double reference) {
  if (!std::isfinite(reference) || !(reference > 0.0)) return 4;
  return std::clamp(2 - static_cast<int>(std::floor(std::log10(reference))), 0, 12);
}

}  // namespace lepus::cli::detail
