#include "sim/hw/maxmin.h"

#include <algorithm>
#include <stdexcept>

namespace moesim {
namespace {

struct CapGreater {  // min-heap of (cap, flow): the smallest cap first, ties to the lower flow
  template <class E>
  bool operator()(const E& a, const E& b) const {
    return a.cap > b.cap || (a.cap == b.cap && a.flow > b.flow);
  }
};

struct HeapGreater {
  template <class E>
  bool operator()(const E& a, const E& b) const {
    return a.share > b.share || (a.share == b.share && a.link > b.link);
  }
};

}  // namespace

void MaxMinSolver::solve(const MaxMinProblem& p, std::span<double> rates) {
  const std::size_t nl = p.capacity.size();
  if (p.flow_offsets.empty()) throw std::invalid_argument("max-min: flow_offsets needs F + 1 entries");
  const std::size_t nf = p.flow_offsets.size() - 1;
  if (rates.size() != nf) throw std::invalid_argument("max-min: rates must have one entry per flow");
  if (!p.rate_cap.empty() && p.rate_cap.size() != nf) throw std::invalid_argument("max-min: one cap per flow");
  const bool has_caps = !p.rate_cap.empty();

  remaining_.assign(p.capacity.begin(), p.capacity.end());
  count_.assign(nl, 0);
  for (const std::uint32_t l : p.flow_links) {
    if (l >= nl) throw std::invalid_argument("max-min: link index out of range");
    ++count_[l];
  }
  // Link -> flows (counting sort; flows in increasing index order per link).
  link_begin_.resize(nl + 1);
  link_begin_[0] = 0;
  for (std::size_t l = 0; l < nl; ++l) link_begin_[l + 1] = link_begin_[l] + count_[l];
  link_flows_.resize(p.flow_links.size());
  cursor_.assign(link_begin_.begin(), link_begin_.end() - 1);
  for (std::uint32_t f = 0; f < nf; ++f) {
    for (std::uint32_t k = p.flow_offsets[f]; k < p.flow_offsets[f + 1]; ++k)
      link_flows_[cursor_[p.flow_links[k]]++] = f;
  }

  // Flows without links get their cap; capped flows wait in a min-heap of (cap, flow).
  fixed_.assign(nf, 0);
  fixed_by_.resize(nf);
  std::size_t unfixed = nf;
  caps_.clear();
  for (std::uint32_t f = 0; f < nf; ++f) {
    const double cap = has_caps ? p.rate_cap[f] : kNoRateCap;
    if (p.flow_offsets[f] == p.flow_offsets[f + 1]) {
      rates[f] = cap;
      fixed_by_[f] = kFixedByCap;
      fixed_[f] = 1;
      --unfixed;
    } else if (cap < kNoRateCap) {
      caps_.push_back(CapEntry{cap, f});
    }
  }
  // Few caps: a scan per step finds the smallest (and drops fixed flows); many: a heap.
  const bool cap_scan = caps_.size() <= kCapScanLimit;
  if (!cap_scan) std::make_heap(caps_.begin(), caps_.end(), CapGreater{});

  // The bottleneck link is found either by a linear scan over the links that
  // still carry unfixed flows, kept contiguous (few links: one division per
  // update, a cache-resident scan per step, no heap traffic) or by a lazy binary
  // heap (many links). Both pick the smallest share, ties to the lower index.
  const bool scan = nl <= kScanLimit;
  share_.resize(nl);
  stamp_.assign(scan ? 0 : nl, 0);
  active_.clear();
  active_share_.clear();
  active_pos_.resize(scan ? nl : 0);
  heap_.clear();
  for (std::uint32_t l = 0; l < nl; ++l) {
    if (count_[l] == 0) continue;
    share_[l] = remaining_[l] / count_[l];
    if (scan) {
      active_pos_[l] = static_cast<std::uint32_t>(active_.size());
      active_.push_back(l);
      active_share_.push_back(share_[l]);
    } else {
      heap_.push_back(HeapEntry{share_[l], l, 0});
    }
  }
  if (!scan) std::make_heap(heap_.begin(), heap_.end(), HeapGreater{});
  auto deactivate = [&](std::uint32_t l) {  // scan mode: swap-remove l from the active links
    const std::uint32_t i = active_pos_[l];
    const std::uint32_t last = active_.back();
    active_[i] = last;
    active_share_[i] = active_share_.back();
    active_pos_[last] = i;
    active_.pop_back();
    active_share_.pop_back();
  };

  // Fixes flow f at rate r: removes it from every link it crosses.
  auto fix = [&](std::uint32_t f, double r, std::uint32_t skip_link) __attribute__((always_inline)) {
    rates[f] = r;
    fixed_[f] = 1;
    --unfixed;
    fixed_by_[f] = skip_link;  // kFixedByCap (the same value) when fixed by its cap
    for (std::uint32_t k = p.flow_offsets[f]; k < p.flow_offsets[f + 1]; ++k) {
      const std::uint32_t l = p.flow_links[k];
      remaining_[l] = std::max(0.0, remaining_[l] - r);
      --count_[l];
      if (l == skip_link) continue;
      if (scan) {
        if (count_[l] > 0) {
          active_share_[active_pos_[l]] = remaining_[l] / count_[l];
        } else {
          deactivate(l);
        }
      } else if (count_[l] > 0) {
        heap_.push_back(HeapEntry{remaining_[l] / count_[l], l, ++stamp_[l]});
        std::push_heap(heap_.begin(), heap_.end(), HeapGreater{});
      }
    }
  };

  while (unfixed > 0) {
    std::uint32_t best = std::numeric_limits<std::uint32_t>::max();
    double link_share = kNoRateCap;
    if (scan) {
      for (std::size_t i = 0; i < active_.size(); ++i) {
        const double s = active_share_[i];
        if (s < link_share || (s == link_share && active_[i] < best)) {
          link_share = s;
          best = active_[i];
        }
      }
    } else {
      while (!heap_.empty() && (heap_.front().stamp != stamp_[heap_.front().link] || count_[heap_.front().link] == 0)) {
        std::pop_heap(heap_.begin(), heap_.end(), HeapGreater{});
        heap_.pop_back();
      }
      if (!heap_.empty()) {
        link_share = heap_.front().share;
        best = heap_.front().link;
      }
    }
    if (cap_scan) {
      std::size_t w = 0, min_i = 0;
      for (std::size_t i = 0; i < caps_.size(); ++i) {
        const CapEntry c = caps_[i];
        if (fixed_[c.flow]) continue;
        if (w == 0 || c.cap < caps_[min_i].cap || (c.cap == caps_[min_i].cap && c.flow < caps_[min_i].flow)) min_i = w;
        caps_[w++] = c;
      }
      caps_.resize(w);
      if (w > 0 && caps_[min_i].cap < link_share) {
        const CapEntry c = caps_[min_i];
        caps_[min_i] = caps_.back();
        caps_.pop_back();
        fix(c.flow, c.cap, kFixedByCap);
        continue;
      }
    } else {
      while (!caps_.empty() && fixed_[caps_.front().flow]) {
        std::pop_heap(caps_.begin(), caps_.end(), CapGreater{});
        caps_.pop_back();
      }
      if (!caps_.empty() && caps_.front().cap < link_share) {
        const CapEntry c = caps_.front();
        std::pop_heap(caps_.begin(), caps_.end(), CapGreater{});
        caps_.pop_back();
        fix(c.flow, c.cap, kFixedByCap);
        continue;
      }
    }
    if (best == std::numeric_limits<std::uint32_t>::max()) {
      throw std::logic_error("max-min: unfixed flows but no constraining link");
    }
    if (!scan) {
      std::pop_heap(heap_.begin(), heap_.end(), HeapGreater{});
      heap_.pop_back();
    }
    for (std::uint32_t k = link_begin_[best]; k < link_begin_[best + 1]; ++k) {
      const std::uint32_t f = link_flows_[k];
      if (!fixed_[f]) fix(f, link_share, best);
    }
    if (scan) {
      deactivate(best);  // saturated
    } else {
      ++stamp_[best];
    }
    count_[best] = 0;
  }
}

std::vector<double> max_min_rates(const MaxMinProblem& p) {
  std::vector<double> rates(p.flow_offsets.empty() ? 0 : p.flow_offsets.size() - 1);
  MaxMinSolver().solve(p, rates);
  return rates;
}

}  // namespace moesim
