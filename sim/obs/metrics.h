// What is measured about requests: one record per request (arrival, first
// token, finish, token counts), the inter-token gaps, and pure summaries
// (percentiles). Tiny state, no engine dependency.
#pragma once

#include <cstdint>
#include <span>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sim/core/time.h"

namespace moesim::obs {

struct RequestRecord {
  std::uint32_t id = 0;
  int input = 0;
  int requested = 0;     // output tokens asked for
  int output = 0;        // output tokens delivered (== requested when finished)
  Time arrival{};
  Time first_token{};
  Time finish{};
  int preemptions = 0;
  int instance = -1;     // the (decode) instance that finished it
  bool measured = true;  // false for warm-up requests
  bool finished = false;
  Duration kv_transfer{};  // disaggregated: time the KV cache spent moving

  [[nodiscard]] double ttft_s() const { return to_seconds(first_token - arrival); }
  [[nodiscard]] double e2e_s() const { return to_seconds(finish - arrival); }
  // Time per output token after the first: (finish - first token) / (output - 1); 0 when output <= 1.
  [[nodiscard]] double tpot_s() const {
    return output > 1 ? to_seconds(finish - first_token) / (output - 1) : 0.0;
  }
};

// Mean and percentiles of a sample. Percentiles interpolate linearly between
// order statistics (rank p/100 x (n-1), numpy's default); all zero for an empty sample.
struct Distribution {
  std::size_t count = 0;
  double mean = 0, p50 = 0, p90 = 0, p99 = 0, max = 0;
};
// `values` is reordered.
Distribution summarize(std::vector<double>& values);
// One percentile of sorted values (same rule).
double percentile_sorted(std::span<const double> sorted, double p);
// The same summary of a sample given as (value, count) pairs sorted by value
// (equal to summarize() of the expanded sample).
Distribution summarize_counts(std::span<const std::pair<double, std::int64_t>> sorted_counts);

// Records per request and the inter-token gaps of measured requests. A
// decode step that emits k > 1 tokens (speculative decoding) is one delivery:
// its gap is the time since the previous delivery. Gaps are kept as exact
// counts per distinct value (the sequences of one step mostly share a gap), so
// memory grows with distinct gaps, not with tokens.
// Optionally (keep_deliveries) every delivery of every request is kept too, for
// the per-token CSV (`moesim run --tokens`): 16 bytes per delivery.
struct Delivery {
  Time time{};
  int tokens = 0;
};

class MetricsCollector {
 public:
  void reserve(std::size_t requests) { records_.reserve(requests); }
  // Call before the first arrival.
  void keep_deliveries(bool on) { keep_deliveries_ = on; }
  [[nodiscard]] bool keeps_deliveries() const { return keep_deliveries_; }
  // Deliveries of request `id` in time order (empty unless kept).
  [[nodiscard]] std::span<const Delivery> deliveries(std::uint32_t id) const {
    return keep_deliveries_ ? std::span<const Delivery>(deliveries_.at(id)) : std::span<const Delivery>();
  }
  // Registers request `id` (ids are dense and issued in order).
  void on_arrival(std::uint32_t id, Time t, int input, int output, bool measured);
  // `n` tokens delivered to request `id` at time t.
  void on_tokens(std::uint32_t id, Time t, int n);
  void on_finish(std::uint32_t id, Time t, int instance, int preemptions, Duration kv_transfer);

  [[nodiscard]] const std::vector<RequestRecord>& records() const { return records_; }
  // (gap in ps, count), sorted by gap.
  [[nodiscard]] std::vector<std::pair<std::int64_t, std::int64_t>> itl_histogram() const;
  [[nodiscard]] std::int64_t itl_count() const { return itl_count_; }
  [[nodiscard]] std::int64_t tokens_emitted() const { return tokens_emitted_; }

 private:
  std::vector<RequestRecord> records_;
  std::vector<Time> last_delivery_;
  bool keep_deliveries_ = false;
  std::vector<std::vector<Delivery>> deliveries_;
  std::unordered_map<std::int64_t, std::int64_t> itl_counts_;
  std::int64_t last_gap_ = -1;
  std::int64_t* last_count_ = nullptr;  // element pointers survive rehashing
  std::int64_t itl_count_ = 0;
  std::int64_t tokens_emitted_ = 0;
};

}  // namespace moesim::obs
