// Strict reading of one JSON-lines record: members by key, each error a
// ConfigError naming "<file>:<line>" and the member's JSON pointer. Shared by
// the record readers of sim/calib (record.cc, ep_layer_record.cc).
#pragma once

#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <map>
#include <sstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sim/config/error.h"

namespace moesim::calib {

using nlohmann::json;

inline const char* type_name(const json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "an array";
  return "an object";
}

inline std::string shown(const json& v) {
  std::string s = v.dump();
  if (s.size() > 40) s = s.substr(0, 37) + "...";
  return s;
}

// Reads members of one JSON object of one line; errors name "<file>:<line>" and the member's pointer.
class LineReader {
 public:
  LineReader(const json& obj, std::string where, std::string pointer)
      : obj_(obj), where_(std::move(where)), pointer_(std::move(pointer)) {}

  [[noreturn]] void fail(const std::string& key, const std::string& msg) const {
    throw ConfigError(where_, key.empty() ? pointer_ : pointer_ + "/" + key, msg);
  }
  bool has(const std::string& key) const { return obj_.contains(key); }
  const json& get(const std::string& key) const {
    auto it = obj_.find(key);
    if (it == obj_.end()) fail(key, "missing member \"" + key + "\"");
    return *it;
  }
  std::string str(const std::string& key) const {
    const json& v = get(key);
    if (!v.is_string()) fail(key, fmt::format("expected a string, found {} ({})", type_name(v), shown(v)));
    return v.get<std::string>();
  }
  std::string str_or(const std::string& key, const std::string& fallback) const {
    return has(key) ? str(key) : fallback;
  }
  double number(const std::string& key, double lo) const {
    const json& v = get(key);
    if (!v.is_number()) fail(key, fmt::format("expected a number, found {} ({})", type_name(v), shown(v)));
    const double d = v.get<double>();
    if (!(d >= lo)) fail(key, fmt::format("expected a number >= {}, found {}", lo, shown(v)));
    return d;
  }
  // A number, or null for a non-finite value (the harness writes NaN/inf as null).
  double number_or_null(const std::string& key, double lo) const {
    const json& v = get(key);
    if (v.is_null()) return std::numeric_limits<double>::infinity();
    return number(key, lo);
  }
  std::int64_t integer(const std::string& key, std::int64_t lo) const {
    const json& v = get(key);
    return as_integer(v, key, lo);
  }
  std::int64_t as_integer(const json& v, const std::string& key, std::int64_t lo) const {
    if (!v.is_number()) fail(key, fmt::format("expected an integer, found {} ({})", type_name(v), shown(v)));
    const double d = v.get<double>();
    if (d != std::floor(d) || std::fabs(d) > 9e15)
      fail(key, fmt::format("expected an integer, found {}", shown(v)));
    if (d < static_cast<double>(lo)) fail(key, fmt::format("expected an integer >= {}, found {}", lo, shown(v)));
    return static_cast<std::int64_t>(d);
  }
  bool boolean(const std::string& key) const {
    const json& v = get(key);
    if (!v.is_boolean()) fail(key, fmt::format("expected true or false, found {} ({})", type_name(v), shown(v)));
    return v.get<bool>();
  }
  std::vector<std::int64_t> int_array(const std::string& key, std::int64_t lo) const {
    const json& v = get(key);
    if (!v.is_array()) fail(key, fmt::format("expected an array of integers, found {}", type_name(v)));
    std::vector<std::int64_t> out;
    for (std::size_t i = 0; i < v.size(); ++i) out.push_back(as_integer(v[i], key + "/" + std::to_string(i), lo));
    return out;
  }
  LineReader object(const std::string& key) const {
    const json& v = get(key);
    if (!v.is_object()) fail(key, fmt::format("expected an object, found {} ({})", type_name(v), shown(v)));
    return LineReader(v, where_, pointer_ + "/" + key);
  }
  // An object whose members are all numbers >= lo, e.g. {"router": 29.6, ...}.
  std::map<std::string, double> number_map(const std::string& key, double lo) const {
    const LineReader o = object(key);
    std::map<std::string, double> out;
    for (const auto& [name, v] : get(key).items()) out[name] = o.number(name, lo);
    return out;
  }
  void one_of(const std::string& key, const std::string& value, std::initializer_list<const char*> allowed) const {
    std::string names;
    for (const char* a : allowed) {
      if (value == a) return;
      names += (names.empty() ? "" : ", ") + std::string(a);
    }
    fail(key, fmt::format("expected one of {}, found \"{}\"", names, value));
  }

 private:
  const json& obj_;
  std::string where_;
  std::string pointer_;
};

// Calls fn(object, where, line number) for every non-blank line of JSON-lines text; `where` is "<file>:<line>".
// A line that is not a JSON object is a ConfigError naming it.
template <class Fn>
void for_each_json_line(const std::string& text, const std::string& file, Fn&& fn) {
  std::istringstream in(text);
  std::string line;
  int no = 0;
  while (std::getline(in, line)) {
    ++no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const std::string where = file + ":" + std::to_string(no);
    json j;
    try {
      j = json::parse(line);
    } catch (const json::parse_error& e) {
      throw ConfigError(where, "", fmt::format("malformed JSON line (byte {})", e.byte));
    }
    if (!j.is_object()) throw ConfigError(where, "", fmt::format("expected a JSON object, found {}", type_name(j)));
    fn(j, where, no);
  }
}

}  // namespace moesim::calib
