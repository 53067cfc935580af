// Private: the one message format of the models' IsValid checks (style.md):
// "<field> is <value>, but must be <constraint>". Writes *error (if non-null) and returns false.
#pragma once

#include <sstream>
#include <string>

namespace lepus::models::detail {

inline bool Fail(std::string* error, const std::string& field, double value, const std::string& constraint) {
  if (error != nullptr) {
    std::ostringstream os;
    os << field << " is " << value << ", but must be " << constraint;
    *error = os.str();
  }
  return false;
}

}  // namespace lepus::models::detail
