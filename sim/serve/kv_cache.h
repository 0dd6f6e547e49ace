// KV-cache block accounting of one attention rank: a fixed number of blocks of
// block_tokens tokens each; allocate/release whole blocks. No engine
// dependency; the per-request block counts live on the requests.
#pragma once

#include <cstdint>

namespace moesim::serve {

// Blocks needed to hold `tokens` tokens (ceil), 0 for 0 tokens.
[[nodiscard]] constexpr int blocks_for(std::int64_t tokens, int block_tokens) {
  return static_cast<int>((tokens + block_tokens - 1) / block_tokens);
}

class KvCache {
 public:
  KvCache() = default;
  KvCache(int total_blocks, int block_tokens) : total_(total_blocks), block_tokens_(block_tokens) {}

  [[nodiscard]] int total_blocks() const { return total_; }
  [[nodiscard]] int used_blocks() const { return used_; }
  [[nodiscard]] int free_blocks() const { return total_ - used_; }
  [[nodiscard]] int block_tokens() const { return block_tokens_; }
  [[nodiscard]] int peak_used_blocks() const { return peak_; }

  // Takes n blocks; false (and nothing taken) when fewer than n are free.
  bool allocate(int n);
  // Returns n blocks; throws std::logic_error when more are returned than are used.
  void release(int n);

 private:
  int total_ = 0;
  int block_tokens_ = 1;
  int used_ = 0;
  int peak_ = 0;
};

}  // namespace moesim::serve
