// Strict numeric command-line values: CLI11 validators that check the text of a flag before
// CLI11 converts it, so that every numeric flag of every subcommand is rejected the same way,
// before any work, with "<flag> is <value>, but must be <constraint>".
//
// Why not CLI11's own conversion and CLI::Range: CLI11 2.1 converts unsigned integers with
// strtoull (which wraps "-5" to 2^64 - 5 and saturates overflow at 2^64 - 1), signed ones with
// strtoll (which clamps 2^63 and above to 2^63 - 1), both in base 0 ("010" is 8, "0x10" is 16),
// and floating-point values with strtold (accepting "nan" and "inf", and 1e400, which becomes inf
// in a double). The validators below accept only plain decimal integers in range (leading zeros
// are removed so CLI11 does not read them as octal) and only finite numbers in range, converted
// exactly as CLI11 converts them afterwards (strtold, then double).
//
// IntegerArg and SeedArg rewrite the text (leading zeros): attach them with ->transform(), which
// lets a validator modify the value (->check() would discard the rewrite); NumberArg with ->check().
//
// CLI11 prefixes a validator's message with the option's name and ": "; FormatParseError turns
// "--events: is -5, ..." into "--events is -5, ...".
#pragma once

#include <cstdint>
#include <limits>
#include <string>

#include <CLI/CLI.hpp>

namespace lepus::cli {

// A non-negative decimal integer in [lo, hi] ("a positive integer" when lo == 1, "a
// non-negative integer" when lo == 0; hi is added to the constraint when it is not the type's
// maximum, e.g. "an integer in [0, 4096]"). For every integer flag, signed or not.
CLI::Validator IntegerArg(std::uint64_t lo, std::uint64_t hi);

// A random seed: any decimal integer in [0, 2^64 - 1] (up to `hi`, when a command derives other
// seeds from it and needs a smaller range). Seeds are read into std::uint64_t, bit for bit.
CLI::Validator SeedArg(std::uint64_t hi = std::numeric_limits<std::uint64_t>::max());

// A finite number (after conversion to double) in the interval from lo to hi; `lo_open` /
// `hi_open` exclude the end points. Infinite bounds mean no bound ("a finite number > 0").
CLI::Validator NumberArg(double lo = -std::numeric_limits<double>::infinity(),
                         double hi = std::numeric_limits<double>::infinity(), bool lo_open = false,
                         bool hi_open = false);
inline CLI::Validator PositiveArg() {
  return NumberArg(0.0, std::numeric_limits<double>::infinity(), true);
}
inline CLI::Validator NonNegativeArg() { return NumberArg(0.0); }

// The message of a CLI11 parse error as printed after "lepus: error: ".
std::string FormatParseError(const CLI::ParseError& e);

// ---- Resource estimates of large counts, checked before the work starts.

// Bytes of memory available to this process: MemAvailable of /proc/meminfo, else the physical
// pages x page size (sysconf); 0 when unknown.
std::uint64_t AvailableMemoryBytes();
// Free bytes for an unprivileged user on the filesystem of `path`'s directory (statvfs); 0 when
// unknown (e.g. the directory does not exist: the output-path check reports that).
std::uint64_t FreeDiskBytes(const std::string& path);
// "1.50 GB", "12.0 MB", "512 bytes".
std::string FormatBytes(double bytes);

// Throws std::invalid_argument when `need` bytes exceed `have` (> 0): "<flag> is <value>, but
// <what> would need about <need>, more than the <have> <where> (<override_flag> skips this
// check)". Does nothing when
// `have` is 0 (unknown) or the check is overridden.
void CheckResourceEstimate(const std::string& flag, const std::string& value, double need,
                           std::uint64_t have, const std::string& what, const std::string& where,
                           const std::string& override_flag);

}  // namespace lepus::cli
