#include "sim/hw/maxmin.h"

#include <algorithm>
#include <stdexcept>

namespace moesim {
namespace {

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
  stamp_.assign(nl, 0);
  fixed_.assign(nf, 0);
  for (const std::uint32_t l : p.flow_links) {
    if (l >= nl) throw std::invalid_argument("max-min: link index out of range");
    ++count_[l];
  }
  // Link -> flows (counting sort; flows in increasing index order per link).
  link_begin_.assign(nl + 1, 0);
  for (std::size_t l = 0; l < nl; ++l) link_begin_[l + 1] = link_begin_[l] + count_[l];
  link_flows_.resize(p.flow_links.size());
  {
    std::vector<std::uint32_t>& fill = stamp_;  // reused as a cursor, reset below
    for (std::size_t l = 0; l < nl; ++l) fill[l] = link_begin_[l];
    for (std::uint32_t f = 0; f < nf; ++f) {
      for (std::uint32_t k = p.flow_offsets[f]; k < p.flow_offsets[f + 1]; ++k) {
        link_flows_[fill[p.flow_links[k]]++] = f;
      }
    }
    std::fill(stamp_.begin(), stamp_.end(), 0);
  }

  std::size_t unfixed = nf;
  for (std::uint32_t f = 0; f < nf; ++f) {
    if (p.flow_offsets[f] == p.flow_offsets[f + 1]) {
      rates[f] = has_caps ? p.rate_cap[f] : kNoRateCap;
      fixed_[f] = 1;
      --unfixed;
    }
  }
  capped_.clear();
  if (has_caps) {
    for (std::uint32_t f = 0; f < nf; ++f) {
      if (!fixed_[f] && p.rate_cap[f] < kNoRateCap) capped_.push_back(f);
    }
    std::stable_sort(capped_.begin(), capped_.end(),
                     [&](std::uint32_t a, std::uint32_t b) { return p.rate_cap[a] < p.rate_cap[b]; });
  }
  std::size_t next_cap = 0;

  // The bottleneck link is found either by a linear scan over the links that
  // still carry unfixed flows (few links: one division per update, a
  // cache-resident scan per step, no heap traffic) or by a lazy binary heap
  // (many links). Both pick the smallest share, ties to the lower index.
  const bool scan = nl <= kScanLimit;
  share_.assign(nl, kNoRateCap);
  active_.clear();
  heap_.clear();
  for (std::uint32_t l = 0; l < nl; ++l) {
    if (count_[l] == 0) continue;
    share_[l] = remaining_[l] / count_[l];
    if (scan) {
      active_.push_back(l);
    } else {
      heap_.push_back(HeapEntry{share_[l], l, 0});
    }
  }
  if (!scan) std::make_heap(heap_.begin(), heap_.end(), HeapGreater{});

  // Fixes flow f at rate r: removes it from every link it crosses.
  auto fix = [&](std::uint32_t f, double r, std::uint32_t skip_link) {
    rates[f] = r;
    fixed_[f] = 1;
    --unfixed;
    for (std::uint32_t k = p.flow_offsets[f]; k < p.flow_offsets[f + 1]; ++k) {
      const std::uint32_t l = p.flow_links[k];
      remaining_[l] = std::max(0.0, remaining_[l] - r);
      --count_[l];
      if (l == skip_link) continue;
      share_[l] = count_[l] > 0 ? remaining_[l] / count_[l] : kNoRateCap;
      if (!scan && count_[l] > 0) {
        heap_.push_back(HeapEntry{share_[l], l, ++stamp_[l]});
        std::push_heap(heap_.begin(), heap_.end(), HeapGreater{});
      }
    }
  };

  while (unfixed > 0) {
    std::uint32_t best = std::numeric_limits<std::uint32_t>::max();
    double link_share = kNoRateCap;
    if (scan) {
      for (std::size_t i = 0; i < active_.size();) {
        const std::uint32_t l = active_[i];
        if (count_[l] == 0) {
          active_[i] = active_.back();
          active_.pop_back();
          continue;
        }
        if (share_[l] < link_share || (share_[l] == link_share && l < best)) {
          link_share = share_[l];
          best = l;
        }
        ++i;
      }
    } else {
      while (!heap_.empty() &&
             (heap_.front().stamp != stamp_[heap_.front().link] || count_[heap_.front().link] == 0)) {
        std::pop_heap(heap_.begin(), heap_.end(), HeapGreater{});
        heap_.pop_back();
      }
      if (!heap_.empty()) {
        link_share = heap_.front().share;
        best = heap_.front().link;
      }
    }
    while (next_cap < capped_.size() && fixed_[capped_[next_cap]]) ++next_cap;
    if (next_cap < capped_.size() && p.rate_cap[capped_[next_cap]] < link_share) {
      const std::uint32_t f = capped_[next_cap++];
      fix(f, p.rate_cap[f], std::numeric_limits<std::uint32_t>::max());
      continue;
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
    count_[best] = 0;  // saturated
    share_[best] = kNoRateCap;
    ++stamp_[best];
  }
}

std::vector<double> max_min_rates(const MaxMinProblem& p) {
  std::vector<double> rates(p.flow_offsets.empty() ? 0 : p.flow_offsets.size() - 1);
  MaxMinSolver().solve(p, rates);
  return rates;
}

}  // namespace moesim
