#include "sim/hw/link_flow_index.h"

#include <algorithm>
#include <stdexcept>

namespace moesim {
namespace {

// Largest value of a span (0 when empty; rates are non-negative). Four
// independent accumulators so the comparisons do not form one dependency chain.
double largest(std::span<const double> v) {
  double m0 = 0, m1 = 0, m2 = 0, m3 = 0;
  std::size_t i = 0;
  for (; i + 4 <= v.size(); i += 4) {
    m0 = v[i] > m0 ? v[i] : m0;
    m1 = v[i + 1] > m1 ? v[i + 1] : m1;
    m2 = v[i + 2] > m2 ? v[i + 2] : m2;
    m3 = v[i + 3] > m3 ? v[i + 3] : m3;
  }
  for (; i < v.size(); ++i) m0 = v[i] > m0 ? v[i] : m0;
  m0 = m1 > m0 ? m1 : m0;
  m2 = m3 > m2 ? m3 : m2;
  return m2 > m0 ? m2 : m0;
}

}  // namespace

LinkFlowIndex::LinkFlowIndex(std::size_t links)
    : entries_(links), rates_(links), used_(links, 0.0), max_(links, 0.0), stale_(links, 0) {}

void LinkFlowIndex::add(std::uint32_t flow, std::span<const LinkId> route, double rate) {
  if (route.size() > kMaxHops) throw std::logic_error("LinkFlowIndex: route longer than kMaxHops");
  if (flow >= (std::uint32_t{1} << (32 - kHopBits))) throw std::length_error("LinkFlowIndex: flow id too large");
  const std::size_t need = (std::size_t{flow} + 1) * kMaxHops;
  if (pos_.size() < need) pos_.resize(std::max(need, 2 * pos_.size()));
  for (std::size_t h = 0; h < route.size(); ++h) {
    const std::uint32_t l = route[h].value();
    const std::uint32_t key = flow * static_cast<std::uint32_t>(kMaxHops) + static_cast<std::uint32_t>(h);
    pos_[key] = static_cast<std::uint32_t>(entries_[l].size());
    entries_[l].push_back(key);
    rates_[l].push_back(rate);
    used_[l] += rate;
    if (rate >= max_[l]) {
      max_[l] = rate;
      stale_[l] = 0;
    }
  }
}

void LinkFlowIndex::remove(std::uint32_t flow, std::span<const LinkId> route, double rate) {
  for (std::size_t h = 0; h < route.size(); ++h) {
    const std::uint32_t l = route[h].value();
    auto& e = entries_[l];
    auto& r = rates_[l];
    const std::uint32_t i = pos_[flow * kMaxHops + h];
    const std::uint32_t moved = e.back();
    e[i] = moved;
    r[i] = r.back();
    pos_[moved] = i;
    e.pop_back();
    r.pop_back();
    if (e.empty()) {
      used_[l] = 0;
      max_[l] = 0;
      stale_[l] = 0;
      continue;
    }
    used_[l] -= rate;
    if (rate == max_[l]) stale_[l] = 1;
  }
}

void LinkFlowIndex::set_rate(std::uint32_t flow, std::span<const LinkId> route, double old_rate, double new_rate) {
  for (std::size_t h = 0; h < route.size(); ++h) {
    const std::uint32_t l = route[h].value();
    rates_[l][pos_[flow * kMaxHops + h]] = new_rate;
    used_[l] += new_rate - old_rate;
    if (new_rate >= max_[l]) {
      max_[l] = new_rate;
      stale_[l] = 0;
    } else if (old_rate == max_[l]) {
      stale_[l] = 1;
    }
  }
}

void LinkFlowIndex::rescan(std::uint32_t l) {
  max_[l] = largest(rates_[l]);
  stale_[l] = 0;
}

void LinkFlowIndex::recompute() {
  for (std::uint32_t l = 0; l < entries_.size(); ++l) {
    double s = 0;
    for (const double r : rates_[l]) s += r;
    used_[l] = s;
    rescan(l);
  }
}

}  // namespace moesim
