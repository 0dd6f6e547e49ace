// Strict reading of description files (hardware, models, scenarios).
//
// An ObjectReader walks one JSON object: each accessor consumes a key, checks
// its type, unit dimension and range, and records where the value came from;
// finish() rejects every key that no accessor consumed. Errors are
// ConfigError(file, JSON pointer, what was expected). Numeric leaves must carry
// a source, written on the value ({"value": .., "source": .., "status": ..}) or
// inherited from the nearest enclosing object with a "source" member.
#pragma once

#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sim/config/error.h"
#include "sim/config/provenance.h"
#include "sim/core/quantity.h"

namespace moesim {

// Reads and parses a JSON file; ConfigError on a missing file or malformed JSON.
nlohmann::json read_json_file(const std::string& path);

// Resolves `relative` against the folder of `base_file` ("hardware/systems/x.json" + "../gpus/y.json").
std::string resolve_relative(const std::string& base_file, const std::string& relative);

struct ReadContext {
  std::string file;
  Provenance* provenance = nullptr;  // receives sources and per-pointer provenance; may be null
  bool require_sources = true;       // numeric leaves must resolve to a source
};

class ObjectReader {
 public:
  // `inherited` is the source/status of the enclosing object.
  ObjectReader(const nlohmann::json& obj, const ReadContext& ctx, std::string pointer,
               SourcedValue inherited = {});

  const std::string& pointer() const { return pointer_; }
  std::string pointer_of(const std::string& key) const;
  const ReadContext& context() const { return ctx_; }
  const SourcedValue& inherited() const { return inherited_; }
  bool has(const std::string& key) const;
  std::vector<std::string> keys() const;  // in document order, excluding "_" comments and "source"/"status"

  ObjectReader child(const std::string& key);
  std::optional<ObjectReader> optional_child(const std::string& key);
  // An array of objects; each element's pointer is <key>/<index>.
  std::vector<ObjectReader> object_array(const std::string& key);

  std::string string(const std::string& key);
  std::optional<std::string> optional_string(const std::string& key);
  std::string one_of(const std::string& key, std::initializer_list<const char*> allowed);
  bool boolean(const std::string& key);
  bool boolean_or(const std::string& key, bool fallback);

  // Numbers: plain JSON numbers (dimensionless); integers must be whole and within [lo, hi].
  double number(const std::string& key, double lo, double hi);
  std::optional<double> optional_number(const std::string& key, double lo, double hi);
  long long integer(const std::string& key, long long lo, long long hi);
  long long integer_or(const std::string& key, long long fallback, long long lo, long long hi);

  // Quantities: strings with a unit of dimension `dim`, value in SI, within [lo, hi] (SI).
  double quantity(const std::string& key, Dim dim, double lo = 0, double hi = 1e300);
  std::optional<double> optional_quantity(const std::string& key, Dim dim, double lo = 0, double hi = 1e300);

  // Throws ConfigError at this object (or at `key`, if given).
  [[noreturn]] void fail(const std::string& message) const;
  [[noreturn]] void fail_at(const std::string& key, const std::string& message) const;

  // Rejects keys that were never consumed.
  void finish() const;

 private:
  // The raw leaf and its provenance, unwrapping {"value","source","status","note"}.
  const nlohmann::json& leaf(const std::string& key, bool numeric);
  const nlohmann::json& obj_;
  ReadContext ctx_;
  std::string pointer_;
  SourcedValue inherited_;
  std::set<std::string> consumed_;
};

}  // namespace moesim
