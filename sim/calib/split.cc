#include "sim/calib/split.h"

#include <algorithm>
#include <map>
#include <optional>
#include <tuple>
#include <set>

#include "sim/calib/prepare.h"

namespace moesim::calib {

const char* split_rule_name(SplitRule r) {
  return r == SplitRule::kPoints ? "every 4th point of each curve" : "every 3rd shape of each family";
}

Split split_records(const std::vector<Record>& usable, SplitRule rule) {
  Split s;
  std::vector<std::optional<CurveId>> ids;
  for (const auto& r : usable) ids.push_back(curve_id(r));
  std::vector<bool> held(usable.size(), false);
  if (rule == SplitRule::kPoints) {
    std::map<CurveId, std::vector<std::pair<double, std::size_t>>> curves;
    for (std::size_t i = 0; i < usable.size(); ++i)
      if (ids[i]) curves[*ids[i]].push_back({curve_x(usable[i]), i});
    for (auto& [id, pts] : curves) {
      std::stable_sort(pts.begin(), pts.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      if (pts.size() < 3) continue;
      for (std::size_t j = 2; j + 1 < pts.size(); j += 4) held[pts[j].second] = true;
    }
  } else {
    std::map<std::pair<std::string, std::string>, std::set<std::vector<double>>> keys;
    for (std::size_t i = 0; i < usable.size(); ++i)
      if (ids[i] && ids[i]->kernel != "nccl_alltoall") keys[{ids[i]->kernel, ids[i]->dtype}].insert(ids[i]->key);
    std::set<std::tuple<std::string, std::string, std::vector<double>>> out;
    for (const auto& [fam, ks] : keys) {
      std::size_t j = 0;
      for (const auto& k : ks) {
        if (j % 3 == 1) out.insert({fam.first, fam.second, k});
        ++j;
      }
    }
    for (std::size_t i = 0; i < usable.size(); ++i)
      if (ids[i] && out.count({ids[i]->kernel, ids[i]->dtype, ids[i]->key})) held[i] = true;
  }
  for (std::size_t i = 0; i < usable.size(); ++i) (held[i] ? s.held : s.fit).push_back(usable[i]);
  return s;
}

}  // namespace moesim::calib
