// The names of the engine's option enums, one table per enum: the single source of their
// ToString, their *FromString parsers (with the same message for every enum) and the choices
// of the command-line flags that set them (the CLI lists Names(table) as the allowed values and
// in the help, never a hand-written list).
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

namespace lepus::engine {

// A value and its name; `alias`, when not null, is also accepted by the parser (an older or
// rabbit spelling), never printed.
template <typename E>
struct EnumName {
  E value;
  const char* name;
  const char* alias = nullptr;
};

// The name of v in the table ("unknown" for a value outside it).
template <typename E, std::size_t N>
std::string NameIn(const EnumName<E> (&table)[N], E v) {
  for (const EnumName<E>& e : table)
    if (e.value == v) return e.name;
  return "unknown";
}

// The names in table order.
template <typename E, std::size_t N>
std::vector<std::string> Names(const EnumName<E> (&table)[N]) {
  std::vector<std::string> out;
  for (const EnumName<E>& e : table) out.push_back(e.name);
  return out;
}

// "a, b or c".
template <typename E, std::size_t N>
std::string ChoiceList(const EnumName<E> (&table)[N]) {
  std::string out;
  for (std::size_t i = 0; i < N; ++i)
    out += (i == 0 ? "" : i + 1 == N ? " or " : ", ") + std::string(table[i].name);
  return out;
}

// The value named `text` (or its alias); throws std::invalid_argument
// "<what> is "<text>", but must be a, b or c".
template <typename E, std::size_t N>
E ParseIn(const EnumName<E> (&table)[N], const std::string& text, const std::string& what) {
  for (const EnumName<E>& e : table)
    if (text == e.name || (e.alias != nullptr && text == e.alias)) return e.value;
  throw std::invalid_argument(what + " is \"" + text + "\", but must be " + ChoiceList(table));
}

}  // namespace lepus::engine
