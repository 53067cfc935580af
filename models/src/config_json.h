// Private: typed accessors for the producers' JSON configurations (the conventions of
// docs/producers.md section 3): every key is read through a typed accessor that names the file
// and the key path in its message, unknown keys are errors with a similar-name hint, and the
// "lepus_config_version" key is required. nlohmann_json stays private to the .cc files that
// include this header. Used by wmass_config.cc and dilepton_config.cc.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace lepus::models::detail {

inline std::string JsonTypeName(const nlohmann::json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "boolean";
  if (v.is_number_integer() || v.is_number_unsigned()) return "integer";
  if (v.is_number()) return "number";
  if (v.is_string()) return "string";
  if (v.is_array()) return "array";
  return "object";
}

// A value as shown in messages (at most 40 characters).
inline std::string JsonShown(const nlohmann::json& v) {
  std::string s = v.dump();
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}

inline std::size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> d(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) d[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t prev = d[0];
    d[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t cur = d[j];
      d[j] = std::min({d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] == b[j - 1] ? 0 : 1)});
      prev = cur;
    }
  }
  return d[b.size()];
}

// Typed accessors over one JSON object; Finish() rejects keys that were never read. Errors are
// std::invalid_argument "<origin>: <key path> is <value> (<type>), but must be <constraint>".
class JsonReader {
 public:
  JsonReader(const nlohmann::json& obj, std::string origin, std::string path)
      : obj_(obj), origin_(std::move(origin)), path_(std::move(path)) {}

  [[noreturn]] void Error(const std::string& key, const nlohmann::json& v,
                          const std::string& must) const {
    throw std::invalid_argument(origin_ + ": " + Path(key) + " is " + JsonShown(v) + " (" +
                                JsonTypeName(v) + "), but must be " + must);
  }
  std::string Path(const std::string& key) const {
    return path_.empty() ? key : path_ + "." + key;
  }
  const std::string& Origin() const { return origin_; }
  const nlohmann::json* Find(const std::string& key) {
    known_.insert(key);
    auto it = obj_.find(key);
    return it == obj_.end() ? nullptr : &*it;
  }
  void Int(const std::string& key, int* out, long long lo, long long hi) {
    long long v;
    if (GetInt(key, &v, lo, hi)) *out = static_cast<int>(v);
  }
  // False (out untouched) when the key is absent.
  bool GetInt(const std::string& key, long long* out, long long lo, long long hi) {
    const nlohmann::json* v = Find(key);
    if (!v) return false;
    if (!v->is_number_integer() && !v->is_number_unsigned()) Error(key, *v, "an integer");
    const long long x = v->get<long long>();
    if (x < lo || x > hi)
      Error(key, *v, "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    *out = x;
    return true;
  }
  void UInt64(const std::string& key, std::uint64_t* out) {
    const nlohmann::json* v = Find(key);
    if (!v) return;
    if (!v->is_number_unsigned() && !(v->is_number_integer() && v->get<long long>() >= 0))
      Error(key, *v, "a non-negative integer");
    *out = v->get<std::uint64_t>();
  }
  void Number(const std::string& key, double* out) {
    const nlohmann::json* v = Find(key);
    if (!v) return;
    if (!v->is_number()) Error(key, *v, "a number");
    *out = v->get<double>();
  }
  void Bool(const std::string& key, bool* out) {
    const nlohmann::json* v = Find(key);
    if (!v) return;
    if (!v->is_boolean()) Error(key, *v, "true or false");
    *out = v->get<bool>();
  }
  void String(const std::string& key, std::string* out) {
    const nlohmann::json* v = Find(key);
    if (!v) return;
    if (!v->is_string()) Error(key, *v, "a string");
    *out = v->get<std::string>();
  }
  void Numbers(const std::string& key, std::vector<double>* out) {
    const nlohmann::json* v = Find(key);
    if (!v) return;
    if (!v->is_array()) Error(key, *v, "an array of numbers");
    std::vector<double> r;
    for (std::size_t i = 0; i < v->size(); ++i) {
      if (!(*v)[i].is_number()) Error(key + "[" + std::to_string(i) + "]", (*v)[i], "a number");
      r.push_back((*v)[i].get<double>());
    }
    *out = std::move(r);
  }
  void Strings(const std::string& key, std::vector<std::string>* out) {
    const nlohmann::json* v = Find(key);
    if (!v) return;
    if (!v->is_array()) Error(key, *v, "an array of strings");
    std::vector<std::string> r;
    for (std::size_t i = 0; i < v->size(); ++i) {
      if (!(*v)[i].is_string()) Error(key + "[" + std::to_string(i) + "]", (*v)[i], "a string");
      r.push_back((*v)[i].get<std::string>());
    }
    *out = std::move(r);
  }
  // A sub-object; nullptr if absent.
  std::unique_ptr<JsonReader> Object(const std::string& key) {
    const nlohmann::json* v = Find(key);
    if (!v) return nullptr;
    if (!v->is_object()) Error(key, *v, "an object");
    return std::make_unique<JsonReader>(*v, origin_, Path(key));
  }
  void Finish() const {
    for (auto it = obj_.begin(); it != obj_.end(); ++it) {
      if (known_.count(it.key())) continue;
      std::string best;
      std::size_t best_d = 3;
      for (const auto& k : known_) {
        const std::size_t d = EditDistance(it.key(), k);
        if (d < best_d) best_d = d, best = k;
      }
      std::string valid;
      for (const auto& k : known_) valid += (valid.empty() ? "" : ", ") + k;
      throw std::invalid_argument(origin_ + ": unknown key '" + Path(it.key()) + "'" +
                                  (best.empty() ? "" : " (did you mean '" + Path(best) + "'?)") +
                                  "; valid keys " + (path_.empty() ? "" : "of " + path_ + " ") +
                                  "are: " + valid);
    }
  }

 private:
  const nlohmann::json& obj_;
  std::string origin_, path_;
  std::set<std::string> known_;
};

// Parses a configuration text into a JSON object and checks "lepus_config_version" == version
// (required); throws std::invalid_argument naming the origin.
inline nlohmann::json ParseConfigObject(const std::string& text, const std::string& origin,
                                        int version, const std::string& doc) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw std::invalid_argument(origin + ": not valid JSON: " + e.what());
  }
  if (!j.is_object())
    throw std::invalid_argument(origin + ": the configuration must be a JSON object, but is " +
                                JsonTypeName(j));
  auto it = j.find("lepus_config_version");
  if (it == j.end())
    throw std::invalid_argument(origin + ": missing key 'lepus_config_version' (this lepus reads "
                                "version " + std::to_string(version) + ")");
  if (!it->is_number_integer() || it->get<long long>() != version)
    throw std::invalid_argument(origin + ": lepus_config_version is " + JsonShown(*it) +
                                ", but this lepus reads version " + std::to_string(version) +
                                " only (write the file for version " + std::to_string(version) +
                                ", see " + doc + ")");
  return j;
}

}  // namespace lepus::models::detail
