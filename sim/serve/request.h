// A request as the serving model sees it: its lengths and where it stands.
// Plain data; owned by the ServingSim in one vector indexed by id.
#pragma once

#include <cstdint>

#include "sim/core/time.h"

namespace moesim::serve {

enum class Phase : std::uint8_t {
  kPending,      // not yet arrived
  kWaiting,      // queued on a rank, nothing computed (or preempted: everything dropped)
  kPrefill,      // admitted, prompt partly computed
  kDecode,       // generating
  kTransfer,     // disaggregated: KV cache moving from the prefill to the decode rank
  kWaitDecode,   // disaggregated: prefill done, waiting for a decode slot
  kDone,
};

struct Request {
  std::uint32_t id = 0;
  int input = 0;           // prompt tokens
  int output = 0;          // tokens to generate
  Time arrival{};
  Phase phase = Phase::kPending;
  // Progress.
  int computed = 0;        // tokens whose KV is in the cache of the current rank
  int generated = 0;       // tokens emitted so far (never rolled back)
  int blocks = 0;          // KV blocks held on the current rank
  int preemptions = 0;
  // Where it is.
  std::int32_t instance = -1;  // global instance index
  std::int32_t rank = -1;      // attention rank within the instance
  bool measured = true;        // false for warm-up requests
  // Times.
  Time first_token{};
  Time last_token{};
  Time finish{};
  Time prefill_done{};
  Duration kv_transfer{};

  // Tokens a prefill (first, or recompute after preemption) computes before it
  // emits the next token: the prompt plus every token emitted so far. In decode
  // computed == input + generated - 1 (the last emitted token is the next input).
  [[nodiscard]] int prefill_target() const { return input + generated; }
  [[nodiscard]] int remaining_prefill() const { return prefill_target() - computed; }
};

}  // namespace moesim::serve
