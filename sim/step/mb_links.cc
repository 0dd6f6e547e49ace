#include "sim/step/mb_links.h"

#include <algorithm>

namespace moesim::step_detail {

void MicroBatchLinks::reset(std::size_t links, std::size_t comms) {
  load_.assign(links, 0);
  shared_.assign(links, 0);
  for (int m = 0; m < 2; ++m) {
    last_[m] = nullptr;
    last_end_[m].clear();
    last_comm_[m] = kNone;
  }
  events_.assign(comms, {});
}

void MicroBatchLinks::reserve(std::size_t c, int mb, std::int64_t s, const LinkBusy& busy) {
  const int o = 1 - mb;
  for (const auto& [l, b] : busy) load_[l] = b;
  if (last_[o]) {
    // The other micro-batch's last collective shares every link both load: each is slowed by the overlap.
    const LinkBusy& ob = *last_[o];
    std::vector<std::int64_t>& oe = last_end_[o];
    std::int64_t before = 0, after = 0;
    for (std::size_t i = 0; i < ob.size(); ++i) {
      const std::uint32_t l = ob[i].first;
      const std::int64_t overlap = std::min(std::max<std::int64_t>(0, oe[i] - s), load_[l]);
      shared_[l] = overlap;
      before = std::max(before, oe[i]);
      oe[i] += overlap;
      after = std::max(after, oe[i]);
    }
    if (after > before) events_[last_comm_[o]].push_back({s, after - before});
  }
  std::vector<std::int64_t>& mine = last_end_[mb];  // this micro-batch's previous collective is no longer needed
  mine.assign(busy.size(), 0);
  std::int64_t own = 0, end = s;
  for (std::size_t i = 0; i < busy.size(); ++i) {
    const auto [l, b] = busy[i];
    mine[i] = s + b + shared_[l];
    own = std::max(own, b);
    end = std::max(end, mine[i]);
  }
  if (end > s + own) events_[c].push_back({s, end - (s + own)});
  for (const auto& [l, b] : busy) load_[l] = 0;
  if (last_[o]) {
    for (const auto& [l, b] : *last_[o]) shared_[l] = 0;
  }
  last_[mb] = &busy;
  last_comm_[mb] = c;
}

}  // namespace moesim::step_detail
