#include "sim/step/pair_routes.h"

#include <algorithm>

namespace moesim::step_detail {

PairRoutes::PairRoutes(const Topology& topo, std::span<const GpuId> gpus)
    : n_(gpus.size()), links_(topo.link_count()) {
  std::vector<std::vector<std::uint32_t>> route(n_ * n_);
  latency_.assign(n_ * n_, Duration{0});
  for (std::size_t i = 0; i < n_; ++i) {
    for (std::size_t j = 0; j < n_; ++j) {
      if (i == j) continue;
      for (const LinkId l : topo.route(gpus[i], gpus[j])) {
        route[i * n_ + j].push_back(l.value());
        latency_[i * n_ + j] += topo.link(l).latency;
      }
    }
  }
  // A source whose every route starts with one link used nowhere else on its routes (its uplink) sums that
  // link's load in a register: the same additions in the same order, without a store-to-load chain per pair.
  row_head_.assign(n_, kNoHead);
  for (std::size_t i = 0; i < n_; ++i) {
    std::uint32_t head = kNoHead;
    bool ok = true;
    for (std::size_t j = 0; j < n_ && ok; ++j) {
      if (j == i) continue;
      const auto& r = route[i * n_ + j];
      if (r.empty()) {
        ok = false;
        break;
      }
      if (head == kNoHead) head = r[0];
      ok = r[0] == head && std::find(r.begin() + 1, r.end(), head) == r.end();
    }
    if (ok) row_head_[i] = head;
  }
  // The other links of every pair's route at a fixed stride, padded with the spare link slot links_.
  stride_ = 0;
  for (std::size_t p = 0; p < n_ * n_; ++p) {
    const std::size_t skip = row_head_[p / n_] == kNoHead || route[p].empty() ? 0 : 1;
    stride_ = std::max(stride_, route[p].size() - skip);
  }
  tail_.assign(n_ * n_ * stride_, static_cast<std::uint32_t>(links_));
  for (std::size_t p = 0; p < n_ * n_; ++p) {
    const std::size_t skip = row_head_[p / n_] == kNoHead || route[p].empty() ? 0 : 1;
    std::copy(route[p].begin() + static_cast<std::ptrdiff_t>(skip), route[p].end(), tail_.begin() + static_cast<std::ptrdiff_t>(p * stride_));
  }
  for (std::size_t l = 0; l < links_; ++l)
    bandwidth_.push_back(topo.link(LinkId(static_cast<std::uint32_t>(l))).bandwidth.value());
  load_.assign(links_ + 1, 0.0);
}

Duration PairRoutes::time(const std::vector<double>& m) { return time(m, nullptr); }

Duration PairRoutes::time(const std::vector<double>& m, std::vector<std::pair<std::uint32_t, std::int64_t>>* busy) {
  // Branch-free over every pair (sparse per-token matrices would mispredict a skip): a pair without bytes adds
  // +0.0 to its links' loads, which leaves them bit-identical, and no latency. Each link receives its additions
  // in the order of alltoall_time's (row-major pairs), so the sums are the same to the bit.
  std::int64_t lat = 0;
  auto pair = [&](std::size_t p, double& head_load) {
    const double b = m[p];
    const double add = std::max(b, 0.0);                     // maxsd, not a branch
    const auto on = static_cast<std::int64_t>(b > 0);        // setcc, not a branch
    head_load += add;
    const std::uint32_t* t = tail_.data() + p * stride_;
    for (std::size_t k = 0; k < stride_; ++k) load_[t[k]] += add;
    lat = std::max(lat, latency_[p].count() * on);
  };
  for (std::size_t i = 0; i < n_; ++i) {
    const std::uint32_t head = row_head_[i];
    if (head == kNoHead) {
      double unused = 0;
      for (std::size_t p = i * n_; p < (i + 1) * n_; ++p) pair(p, unused);
      continue;
    }
    double head_load = load_[head];
    for (std::size_t p = i * n_; p < i * n_ + i; ++p) pair(p, head_load);  // the diagonal has no route
    for (std::size_t p = i * n_ + i + 1; p < (i + 1) * n_; ++p) pair(p, head_load);
    load_[head] = head_load;
  }
  double worst = 0;
  if (busy) busy->clear();
  for (std::size_t l = 0; l < links_; ++l) {
    const double t = load_[l] > 0 ? load_[l] / bandwidth_[l] : 0.0;
    worst = std::max(worst, t);
    if (busy && t > 0) busy->emplace_back(static_cast<std::uint32_t>(l), duration_from_seconds_ceil(t).count());
    load_[l] = 0;
  }
  load_[links_] = 0;
  return duration_from_seconds_ceil(worst) + Duration{lat};
}

}  // namespace moesim::step_detail
