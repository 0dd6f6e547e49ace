#include "sim/config/json_reader.h"

#include <cmath>
#include <filesystem>
#include <fmt/format.h>
#include <fstream>
#include <sstream>

namespace moesim {

namespace {

using nlohmann::json;

std::string type_name(const json& v) {
  if (v.is_string()) return fmt::format("the string \"{}\"", v.get<std::string>());
  if (v.is_number()) return fmt::format("the number {}", v.dump());
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_null()) return "null";
  if (v.is_array()) return "an array";
  return "an object";
}

// RFC 6901 escaping of one reference token.
std::string escape_token(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

const std::set<std::string> kStatuses = {"P", "Pc", "D", "M", "S", "U", "E", "X"};

bool is_wrapped(const json& v) { return v.is_object() && v.contains("value"); }

}  // namespace

std::map<std::string, SourcedValue> Provenance::with_status(std::initializer_list<std::string_view> statuses) const {
  std::map<std::string, SourcedValue> out;
  for (const auto& [ptr, sv] : by_pointer) {
    for (std::string_view st : statuses) {
      if (sv.status == st) out.emplace(ptr, sv);
    }
  }
  return out;
}

json read_json_file(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw ConfigError(path, "", "cannot read the file: it does not exist or is not a regular file");
  std::ifstream in(path);
  if (!in) throw ConfigError(path, "", "cannot open the file for reading");
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    // Turn the byte offset into a line and column.
    std::size_t line = 1, col = 1;
    for (std::size_t i = 0; i < e.byte && i < text.size(); ++i) {
      if (text[i] == '\n') { ++line; col = 1; } else { ++col; }
    }
    throw ConfigError(path, "", fmt::format("malformed JSON at line {}, column {}: expected valid JSON", line, col));
  }
}

std::string resolve_relative(const std::string& base_file, const std::string& relative) {
  const std::filesystem::path rel(relative);
  if (rel.is_absolute()) return rel.lexically_normal().string();
  return (std::filesystem::path(base_file).parent_path() / rel).lexically_normal().string();
}

ObjectReader::ObjectReader(const json& obj, const ReadContext& ctx, std::string pointer, SourcedValue inherited)
    : obj_(obj), ctx_(ctx), pointer_(std::move(pointer)), inherited_(std::move(inherited)) {
  if (!obj_.is_object())
    throw ConfigError(ctx_.file, pointer_, fmt::format("expected an object, got {}", type_name(obj_)));
  // An object may set the source/status that its members inherit.
  if (obj_.contains("source")) {
    consumed_.insert("source");
    const json& s = obj_.at("source");
    if (!s.is_string()) fail_at("source", fmt::format("expected a source key (string), got {}", type_name(s)));
    inherited_.source = s.get<std::string>();
    inherited_.note.clear();
    if (ctx_.provenance && !ctx_.provenance->sources.count(inherited_.source) &&
        inherited_.source.rfind("validate/", 0) != 0 && pointer_ != "")
      fail_at("source", fmt::format("unknown source key \"{}\": expected a key of the top-level \"sources\" table "
                                    "or a path under validate/",
                                    inherited_.source));
  }
  if (obj_.contains("status")) {
    consumed_.insert("status");
    const json& s = obj_.at("status");
    if (!s.is_string() || !kStatuses.count(s.get<std::string>()))
      fail_at("status", fmt::format("expected one of P, Pc, D, M, S, U, E, X, got {}", type_name(s)));
    inherited_.status = s.get<std::string>();
  }
}

std::string ObjectReader::pointer_of(const std::string& key) const { return pointer_ + "/" + escape_token(key); }

bool ObjectReader::has(const std::string& key) const { return obj_.contains(key); }

std::vector<std::string> ObjectReader::keys() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : obj_.items()) {
    if (k.empty() || k[0] == '_' || k == "source" || k == "status") continue;
    out.push_back(k);
  }
  return out;
}

void ObjectReader::fail(const std::string& message) const { throw ConfigError(ctx_.file, pointer_, message); }

void ObjectReader::fail_at(const std::string& key, const std::string& message) const {
  throw ConfigError(ctx_.file, pointer_of(key), message);
}

ObjectReader ObjectReader::child(const std::string& key) {
  if (!obj_.contains(key)) fail_at(key, "missing required object");
  consumed_.insert(key);
  return ObjectReader(obj_.at(key), ctx_, pointer_of(key), inherited_);
}

std::optional<ObjectReader> ObjectReader::optional_child(const std::string& key) {
  if (!obj_.contains(key)) return std::nullopt;
  return child(key);
}

std::vector<ObjectReader> ObjectReader::object_array(const std::string& key) {
  if (!obj_.contains(key)) fail_at(key, "missing required array");
  consumed_.insert(key);
  const json& arr = obj_.at(key);
  if (!arr.is_array()) fail_at(key, fmt::format("expected an array of objects, got {}", type_name(arr)));
  std::vector<ObjectReader> out;
  for (std::size_t i = 0; i < arr.size(); ++i)
    out.emplace_back(arr[i], ctx_, pointer_of(key) + "/" + std::to_string(i), inherited_);
  return out;
}

const json& ObjectReader::leaf(const std::string& key, bool numeric) {
  if (!obj_.contains(key)) fail_at(key, "missing required value");
  consumed_.insert(key);
  const json& raw = obj_.at(key);
  SourcedValue sv = inherited_;
  const json* value = &raw;
  if (is_wrapped(raw)) {
    ObjectReader wrap(raw, ctx_, pointer_of(key), inherited_);
    wrap.consumed_.insert("value");
    if (raw.contains("note")) {
      const json& n = raw.at("note");
      if (!n.is_string()) wrap.fail_at("note", fmt::format("expected a string, got {}", type_name(n)));
      wrap.consumed_.insert("note");
      sv.note = n.get<std::string>();
    }
    wrap.finish();
    sv.source = wrap.inherited_.source;
    sv.status = wrap.inherited_.status;
    value = &raw.at("value");
  }
  if (sv.status.empty()) sv.status = "P";
  if (numeric && ctx_.require_sources && sv.source.empty())
    fail_at(key, "a number without a source: give the value as {\"value\": ..., \"source\": KEY} or set "
                 "\"source\" on an enclosing object");
  if (ctx_.provenance && !sv.source.empty()) ctx_.provenance->by_pointer[pointer_of(key)] = sv;
  return *value;
}

std::string ObjectReader::string(const std::string& key) {
  const json& v = leaf(key, false);
  if (!v.is_string()) fail_at(key, fmt::format("expected a string, got {}", type_name(v)));
  return v.get<std::string>();
}

std::optional<std::string> ObjectReader::optional_string(const std::string& key) {
  if (!has(key)) return std::nullopt;
  return string(key);
}

std::string ObjectReader::one_of(const std::string& key, std::initializer_list<const char*> allowed) {
  const std::string v = string(key);
  std::string list;
  for (const char* a : allowed) {
    if (v == a) return v;
    list += (list.empty() ? "" : ", ") + std::string("\"") + a + "\"";
  }
  fail_at(key, fmt::format("expected one of {}, got \"{}\"", list, v));
}

bool ObjectReader::boolean(const std::string& key) {
  const json& v = leaf(key, false);
  if (!v.is_boolean()) fail_at(key, fmt::format("expected true or false, got {}", type_name(v)));
  return v.get<bool>();
}

bool ObjectReader::boolean_or(const std::string& key, bool fallback) { return has(key) ? boolean(key) : fallback; }

double ObjectReader::number(const std::string& key, double lo, double hi) {
  const json& v = leaf(key, true);
  if (!v.is_number()) fail_at(key, fmt::format("expected a number, got {}", type_name(v)));
  const double x = v.get<double>();
  if (!(x >= lo && x <= hi)) fail_at(key, fmt::format("expected a number in [{}, {}], got {}", lo, hi, v.dump()));
  return x;
}

std::optional<double> ObjectReader::optional_number(const std::string& key, double lo, double hi) {
  if (!has(key)) return std::nullopt;
  return number(key, lo, hi);
}

long long ObjectReader::integer(const std::string& key, long long lo, long long hi) {
  const json& v = leaf(key, true);
  if (!v.is_number() || (v.is_number_float() && std::floor(v.get<double>()) != v.get<double>()))
    fail_at(key, fmt::format("expected a whole number, got {}", type_name(v)));
  const double x = v.get<double>();
  if (!(x >= static_cast<double>(lo) && x <= static_cast<double>(hi)))
    fail_at(key, fmt::format("expected a whole number in [{}, {}], got {}", lo, hi, v.dump()));
  return static_cast<long long>(x);
}

long long ObjectReader::integer_or(const std::string& key, long long fallback, long long lo, long long hi) {
  return has(key) ? integer(key, lo, hi) : fallback;
}

double ObjectReader::quantity(const std::string& key, Dim dim, double lo, double hi) {
  const json& v = leaf(key, true);
  if (!v.is_string())
    fail_at(key, fmt::format("expected {} with its unit, got {}", describe_dim(dim), type_name(v)));
  const auto q = parse_quantity(v.get<std::string>());
  if (!q) fail_at(key, fmt::format("expected {}, got \"{}\" (not a number with a known unit)", describe_dim(dim),
                                   v.get<std::string>()));
  if (q->dim != dim)
    fail_at(key, fmt::format("expected {}, got \"{}\", which is {}", describe_dim(dim), v.get<std::string>(),
                             describe_dim(q->dim)));
  if (!(q->si >= lo && q->si <= hi))
    fail_at(key, fmt::format("\"{}\" is out of range: expected {} between {} and {} (SI units)",
                             v.get<std::string>(), describe_dim(dim), lo, hi));
  return q->si;
}

std::optional<double> ObjectReader::optional_quantity(const std::string& key, Dim dim, double lo, double hi) {
  if (!has(key)) return std::nullopt;
  return quantity(key, dim, lo, hi);
}

void ObjectReader::finish() const {
  for (const auto& [k, v] : obj_.items()) {
    if (!k.empty() && k[0] == '_') continue;
    if (!consumed_.count(k)) {
      std::string known;
      for (const auto& c : consumed_) known += (known.empty() ? "" : ", ") + c;
      fail_at(k, fmt::format("unknown key \"{}\"{}", k, known.empty() ? "" : " (expected one of: " + known + ")"));
    }
  }
}

}  // namespace moesim
