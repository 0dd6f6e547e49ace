// Where requests come from: open-loop Poisson arrivals, a closed loop of fixed
// concurrency, or a trace; lengths fixed or drawn. Deterministic: arrivals and
// lengths come from the named streams "workload/arrivals" and
// "workload/lengths" of the seed. No engine dependency.
#pragma once

#include <cstdint>
#include <optional>

#include "sim/config/scenario.h"
#include "sim/core/rng.h"
#include "sim/core/time.h"

namespace moesim::serve {

// One length draw: fixed, uniform integer in [min, max], or a normal rounded
// to the nearest integer and clipped to [min, max].
int draw_length(const LengthDistribution& d, Rng& rng);

struct RequestDraw {
  Time arrival;
  int input = 0;
  int output = 0;
};

class RequestSource {
 public:
  RequestSource(const WorkloadSpec& spec, std::uint64_t seed);

  // The next request. Open loop and trace: its own arrival time (`now` is
  // ignored). Closed loop: arrives at `now` (the time a slot freed). nullopt
  // once the request count or the duration is exhausted.
  std::optional<RequestDraw> next(Time now);
  [[nodiscard]] long long issued() const { return issued_; }
  // Requests the closed loop starts with.
  [[nodiscard]] int initial_concurrency() const;

 private:
  const WorkloadSpec& spec_;
  Rng arrivals_;
  Rng lengths_;
  Time last_arrival_{};
  long long issued_ = 0;
};

}  // namespace moesim::serve
