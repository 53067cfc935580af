#include "args.h"

#include <sys/statvfs.h>
#include <unistd.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <system_error>

namespace lepus::cli {
namespace {

constexpr std::uint64_t kU64Max = std::numeric_limits<std::uint64_t>::max();

// The value as shown in a message: the text itself when it reads as a number (e.g. -5, nan,
// 1e400), else quoted; at most 40 characters.
std::string Shown(const std::string& text) {
  std::string s = text.size() > 40 ? text.substr(0, 37) + "..." : text;
  char* end = nullptr;
  const bool numeric = !text.empty() && !std::isspace(static_cast<unsigned char>(text[0])) &&
                       (std::strtold(text.c_str(), &end), end == text.c_str() + text.size());
  return numeric ? s : "'" + s + "'";
}

std::string Bound(double x) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", x);
  return buf;
}

// Reads a plain decimal integer (digits only) into *out; false for anything else or overflow.
bool ReadDecimal(const std::string& text, std::uint64_t* out) {
  if (text.empty()) return false;
  for (char c : text)
    if (c < '0' || c > '9') return false;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), *out, 10);
  return ec == std::errc() && ptr == text.data() + text.size();
}

// Leading zeros removed (CLI11 converts integers in base 0, where "010" is octal 8).
void StripLeadingZeros(std::string* text) {
  const std::size_t first = text->find_first_not_of('0');
  if (first == std::string::npos)
    *text = "0";
  else if (first > 0)
    text->erase(0, first);
}

std::string IntegerConstraint(std::uint64_t lo, std::uint64_t hi) {
  if (hi == kU64Max) {
    if (lo == 0) return "a non-negative integer";
    if (lo == 1) return "a positive integer";
    return "an integer >= " + std::to_string(lo);
  }
  return "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
}

}  // namespace

CLI::Validator IntegerArg(std::uint64_t lo, std::uint64_t hi) {
  const std::string constraint = IntegerConstraint(lo, hi);
  return CLI::Validator(
      [lo, hi, constraint](std::string& text) -> std::string {
        std::uint64_t v = 0;
        if (!ReadDecimal(text, &v) || v < lo || v > hi)
          return "is " + Shown(text) + ", but must be " + constraint;
        StripLeadingZeros(&text);
        return {};
      },
      hi == kU64Max ? "INTEGER >= " + std::to_string(lo)
                    : "INTEGER in [" + std::to_string(lo) + " - " + std::to_string(hi) + "]");
}

CLI::Validator SeedArg(std::uint64_t hi) {
  const std::string constraint = hi == kU64Max
                                     ? "an unsigned 64-bit integer (0 to 18446744073709551615)"
                                     : "an integer in [0, " + std::to_string(hi) + "]";
  return CLI::Validator(
      [hi, constraint](std::string& text) -> std::string {
        std::uint64_t v = 0;
        if (!ReadDecimal(text, &v) || v > hi)
          return "is " + Shown(text) + ", but must be " + constraint;
        StripLeadingZeros(&text);
        return {};
      },
      "UINT64");
}

CLI::Validator NumberArg(double lo, double hi, bool lo_open, bool hi_open) {
  std::string constraint = "a finite number";
  const bool has_lo = std::isfinite(lo), has_hi = std::isfinite(hi);
  if (has_lo && has_hi)
    constraint += std::string(" in ") + (lo_open ? "(" : "[") + Bound(lo) + ", " + Bound(hi) +
                  (hi_open ? ")" : "]");
  else if (has_lo)
    constraint += (lo_open ? " > " : " >= ") + Bound(lo);
  else if (has_hi)
    constraint += (hi_open ? " < " : " <= ") + Bound(hi);
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        // Converted as CLI11 converts it afterwards (strtold, then double), so the value checked
        // is the value used.
        char* end = nullptr;
        const bool parsed = !text.empty() && !std::isspace(static_cast<unsigned char>(text[0])) &&
                            (std::strtold(text.c_str(), &end), end == text.c_str() + text.size());
        const double v = parsed ? static_cast<double>(std::strtold(text.c_str(), nullptr)) : NAN;
        const bool ok = parsed && std::isfinite(v) && (!has_lo || (lo_open ? v > lo : v >= lo)) &&
                        (!has_hi || (hi_open ? v < hi : v <= hi));
        if (!ok) return "is " + Shown(text) + ", but must be " + constraint;
        return {};
      },
      "NUMBER");
}

std::string FormatParseError(const CLI::ParseError& e) {
  std::string msg = e.what();
  // "<flag>: is <value>, but must be ..." (CLI11's prefix + a validator above).
  if (dynamic_cast<const CLI::ValidationError*>(&e) != nullptr) {
    const std::size_t p = msg.find(": is ");
    if (p != std::string::npos && msg.find(' ') > p) msg.erase(p, 1);
  }
  return msg;
}

std::uint64_t AvailableMemoryBytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  std::uint64_t kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit)
    if (key == "MemAvailable:") return kb * 1024;
  const long pages = ::sysconf(_SC_AVPHYS_PAGES), size = ::sysconf(_SC_PAGESIZE);
  return pages > 0 && size > 0
             ? static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(size)
             : 0;
}

std::uint64_t FreeDiskBytes(const std::string& path) {
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (dir.empty()) dir = ".";
  struct statvfs s {};
  if (::statvfs(dir.c_str(), &s) != 0) return 0;
  return static_cast<std::uint64_t>(s.f_bavail) * static_cast<std::uint64_t>(s.f_frsize);
}

std::string FormatBytes(double bytes) {
  char buf[48];
  if (bytes >= 1e15)
    std::snprintf(buf, sizeof(buf), "%.3g PB", bytes / 1e15);
  else if (bytes >= 1e12)
    std::snprintf(buf, sizeof(buf), "%.2f TB", bytes / 1e12);
  else if (bytes >= 1e9)
    std::snprintf(buf, sizeof(buf), "%.2f GB", bytes / 1e9);
  else if (bytes >= 1e6)
    std::snprintf(buf, sizeof(buf), "%.1f MB", bytes / 1e6);
  else
    std::snprintf(buf, sizeof(buf), "%.0f bytes", bytes);
  return buf;
}

void CheckResourceEstimate(const std::string& flag, const std::string& value, double need,
                           std::uint64_t have, const std::string& what, const std::string& where,
                           const std::string& override_flag) {
  if (have == 0 || need <= static_cast<double>(have)) return;
  throw std::invalid_argument(flag + " is " + value + ", but " + what + " would need about " +
                              FormatBytes(need) + " (" + Bound(need) + " bytes), more than the " +
                              FormatBytes(static_cast<double>(have)) + " " + where + " (" +
                              override_flag + " skips this check)");
}

}  // namespace lepus::cli
