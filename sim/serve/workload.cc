#include "sim/serve/workload.h"

#include <algorithm>
#include <cmath>

namespace moesim::serve {

int draw_length(const LengthDistribution& d, Rng& rng) {
  switch (d.kind) {
    case LengthDistribution::Kind::kFixed: return d.min;
    case LengthDistribution::Kind::kUniform:
      return d.min + static_cast<int>(rng.uniform_int(static_cast<std::uint64_t>(d.max - d.min + 1)));
    case LengthDistribution::Kind::kNormal: {
      const double x = std::nearbyint(rng.normal(d.mean, d.sd));
      return static_cast<int>(std::clamp(x, static_cast<double>(d.min), static_cast<double>(d.max)));
    }
  }
  return d.min;
}

RequestSource::RequestSource(const WorkloadSpec& spec, std::uint64_t seed)
    : spec_(spec), arrivals_(Rng::stream(seed, "workload/arrivals")), lengths_(Rng::stream(seed, "workload/lengths")) {}

int RequestSource::initial_concurrency() const {
  if (spec_.arrival != ArrivalKind::kClosedLoop) return 0;
  long long n = spec_.concurrency;
  if (spec_.requests) n = std::min(n, *spec_.requests);
  return static_cast<int>(n);
}

std::optional<RequestDraw> RequestSource::next(Time now) {
  long long limit = spec_.requests.value_or(-1);
  if (spec_.arrival == ArrivalKind::kTrace) {
    const long long n = static_cast<long long>(spec_.trace.size());
    limit = limit < 0 ? n : std::min(limit, n);
  }
  if (limit >= 0 && issued_ >= limit) return std::nullopt;
  RequestDraw d;
  switch (spec_.arrival) {
    case ArrivalKind::kTrace: {
      const TraceEntry& e = spec_.trace[static_cast<std::size_t>(issued_)];
      d = {Time(e.arrival), e.input, e.output};
      break;
    }
    case ArrivalKind::kPoisson:
      last_arrival_ += duration_from_seconds_ceil(arrivals_.exponential(spec_.rate_per_s));
      d.arrival = last_arrival_;
      break;
    case ArrivalKind::kClosedLoop: d.arrival = now; break;
  }
  if (spec_.duration && d.arrival.time_since_epoch() > *spec_.duration) return std::nullopt;
  if (spec_.arrival != ArrivalKind::kTrace) {
    d.input = draw_length(spec_.input, lengths_);
    d.output = draw_length(spec_.output, lengths_);
  }
  ++issued_;
  return d;
}

}  // namespace moesim::serve
