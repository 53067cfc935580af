// Errors for bad user input (files, datasets, fields). Messages name the file, the dataset or
// field, the offending value and what was expected:
//   "<file>: <dataset>[<index>] is <value>, but must be <constraint>"
#pragma once

#include <stdexcept>
#include <string>

namespace lepus::io {

class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace lepus::io
