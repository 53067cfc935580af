// Internal to lepus_models and lepus_calibration (target lepus_models_internal, never installed):
// the one message format of the models' IsValid checks (style.md):
// "<field> is <value>, but must be <constraint>". Writes *error (if non-null) and returns false.
#pragma once

#include <sstream>
#include <string>
#include <vector>

namespace lepus::models::detail {

// A value in a message, as the stream writes it (6 significant digits): "1.5", "0.001", "1e+06".
inline std::string Num(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

inline bool Fail(std::string* error, const std::string& field, double value,
                 const std::string& constraint) {
  if (error != nullptr) {
    std::ostringstream os;
    os << field << " is " << value << ", but must be " << constraint;
    *error = os.str();
  }
  return false;
}

// The same for a message composed by the caller (several fields, or a value that is not a
// number).
inline bool Fail(std::string* error, const std::string& message) {
  if (error != nullptr) *error = message;
  return false;
}

// A member's own IsValid check, its message prefixed with the member's name ("data_detector.").
template <typename T>
bool ValidMember(const T& member, const std::string& name, std::string* error) {
  std::string sub;
  if (member.IsValid(&sub)) return true;
  if (error != nullptr) *error = name + "." + sub;
  return false;
}

// Event files for both samples or for neither (a sample cannot be read while the other one is
// generated with a different configuration).
inline bool ValidFilePair(const std::vector<std::string>& data_files,
                          const std::vector<std::string>& sim_files, std::string* error) {
  if (data_files.empty() == sim_files.empty()) return true;
  const bool data_missing = data_files.empty();
  return Fail(error, data_missing ? "data_files.size()" : "sim_files.size()", 0,
              std::string("> 0 when ") + (data_missing ? "sim_files" : "data_files") +
                  " is given (read both samples from files or generate both)");
}

}  // namespace lepus::models::detail
