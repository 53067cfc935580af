// The exit codes of `lepus` (README.md "Exit codes"): bad user input throws (io::InputError,
// std::invalid_argument) and main() maps it to 1; numerical outcomes are statuses, mapped to 2.
#pragma once

namespace lepus::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitInvalidInput = 1;  // unreadable/invalid file, bad flags or values
inline constexpr int kExitFitFailed = 2;     // fit not converged or failed (results still written)
inline constexpr int kExitInternal = 3;      // unexpected exception: a bug, please report

}  // namespace lepus::cli
