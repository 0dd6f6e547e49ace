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
}

void MetricsCollector::on_tokens(std::uint32_t id, Time t, int n) {
  RequestRecord& r = records_.at(id);
  if (r.output == 0) {
    r.first_token = t;
  } else if (r.measured) {
    itl_ps_.push_back((t - last_delivery_[id]).count());
  }
  last_delivery_[id] = t;
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
