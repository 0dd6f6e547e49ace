// The common head of every description file: "kind", "id", "name", and the
// "sources" table that every number's source key must resolve in.
#pragma once

#include <string>

#include "sim/config/json_reader.h"

namespace moesim {

struct DescriptionHead {
  std::string id;
  std::string name;
};

// Checks "kind" == expected_kind and reads "sources" (into ctx.provenance), "id" and "name".
DescriptionHead read_description_head(ObjectReader& root, const std::string& expected_kind);

}  // namespace moesim
