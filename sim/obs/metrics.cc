#include "sim/obs/metrics.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace moesim::obs {

double percentile_sorted(std::span<const double> sorted, double p) {
  if (sorted.empty()) return 0;
  const double rank = p / 100.0 * static_cast<double>(sorted.size() - 1);
  const std::size_t lo = static_cast<std::size_t>(std::floor(rank));
  const std::size_t hi = std::min(lo + 1, sorted.size() - 1);
  const double frac = rank - static_cast<double>(lo);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * frac;
}

Distribution summarize(std::vector<double>& values) {
  Distribution d;
  d.count = values.size();
  if (values.empty()) return d;
  std::sort(values.begin(), values.end());
  double sum = 0;
  for (double v : values) sum += v;
  d.mean = sum / static_cast<double>(values.size());
  d.p50 = percentile_sorted(values, 50);
  d.p90 = percentile_sorted(values, 90);
  d.p99 = percentile_sorted(values, 99);
  d.max = values.back();
  return d;
}

Distribution summarize_counts(std::span<const std::pair<double, std::int64_t>> sorted) {
  Distribution d;
  std::int64_t n = 0;
  double sum = 0;
  for (const auto& [v, c] : sorted) {
    n += c;
    sum += v * static_cast<double>(c);
  }
  if (n == 0) return d;
  d.count = static_cast<std::size_t>(n);
  d.mean = sum / static_cast<double>(n);
  d.max = sorted.back().first;
  // The value of order statistic k (0-based).
  auto at = [&](std::int64_t k) {
    std::int64_t seen = 0;
    for (const auto& [v, c] : sorted) {
      seen += c;
      if (k < seen) return v;
    }
    return sorted.back().first;
  };
  auto pct = [&](double p) {
    const double rank = p / 100.0 * static_cast<double>(n - 1);
    const auto lo = static_cast<std::int64_t>(std::floor(rank));
    const double a = at(lo), b = at(std::min(lo + 1, n - 1));
    return a + (b - a) * (rank - static_cast<double>(lo));
  };
  d.p50 = pct(50);
  d.p90 = pct(90);
  d.p99 = pct(99);
  return d;
}

std::vector<std::pair<std::int64_t, std::int64_t>> MetricsCollector::itl_histogram() const {
  std::vector<std::pair<std::int64_t, std::int64_t>> out(itl_counts_.begin(), itl_counts_.end());
  std::sort(out.begin(), out.end());
  return out;
}

void MetricsCollector::on_arrival(std::uint32_t id, Time t, int input, int output, bool measured) {
  if (id != records_.size()) throw std::logic_error("MetricsCollector: request ids must be dense and in order");
  RequestRecord r;
  r.id = id;
  r.input = input;
  r.requested = output;
  r.arrival = t;
  r.measured = measured;
  records_.push_back(r);
  last_delivery_.push_back(t);
  if (keep_deliveries_) deliveries_.emplace_back();
}

void MetricsCollector::on_tokens(std::uint32_t id, Time t, int n) {
  RequestRecord& r = records_.at(id);
  if (r.output == 0) {
    r.first_token = t;
  } else if (r.measured) {
    const std::int64_t gap = (t - last_delivery_[id]).count();
    if (gap != last_gap_) {
      last_gap_ = gap;
      last_count_ = &itl_counts_[gap];
    }
    ++*last_count_;
    ++itl_count_;
  }
  last_delivery_[id] = t;
  if (keep_deliveries_) deliveries_[id].push_back({t, n});
  r.output += n;
  tokens_emitted_ += n;
}

void MetricsCollector::on_finish(std::uint32_t id, Time t, int instance, int preemptions, Duration kv_transfer) {
  RequestRecord& r = records_.at(id);
  r.finish = t;
  r.finished = true;
  r.instance = instance;
  r.preemptions = preemptions;
  r.kv_transfer = kv_transfer;
}

}  // namespace moesim::obs
