// Where each number of a description came from: the source key, its status
// (P, Pc, D, M, S, U, E, X) and an optional note, by JSON pointer.
#pragma once

#include <map>
#include <initializer_list>
#include <string>
#include <string_view>

namespace moesim {

struct SourcedValue {
  std::string source;  // key into the file's "sources" table, or "validate/..." for our measurements
  std::string status;  // P Pc D M S U E X
  std::string note;
};

struct Provenance {
  std::map<std::string, std::string> sources;     // key -> document / URL / repository@commit
  std::map<std::string, SourcedValue> by_pointer;  // "/hbm/bandwidth" -> its source

  // The values whose status is one of `statuses`, e.g. {"X", "U"}: extrapolated or unconfirmed.
  std::map<std::string, SourcedValue> with_status(std::initializer_list<std::string_view> statuses) const;
};

}  // namespace moesim
