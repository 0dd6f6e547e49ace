#include "sim/config/description.h"

#include <fmt/format.h>

namespace moesim {

DescriptionHead read_description_head(ObjectReader& root, const std::string& expected_kind) {
  const std::string kind = root.string("kind");
  if (kind != expected_kind)
    root.fail_at("kind", fmt::format("expected \"{}\" (this file is read as a {} description), got \"{}\"",
                                     expected_kind, expected_kind, kind));
  ObjectReader sources = root.child("sources");
  for (const std::string& key : sources.keys()) {
    const std::string where = sources.string(key);
    if (root.context().provenance) root.context().provenance->sources[key] = where;
  }
  sources.finish();
  const std::string& own = root.inherited().source;
  if (!own.empty() && root.context().provenance && !root.context().provenance->sources.count(own) &&
      own.rfind("validate/", 0) != 0)
    root.fail_at("source", fmt::format("unknown source key \"{}\": expected a key of the \"sources\" table", own));
  DescriptionHead head;
  head.id = root.string("id");
  head.name = root.string("name");
  return head;
}

}  // namespace moesim
