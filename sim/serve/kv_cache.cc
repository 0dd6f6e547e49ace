#include "sim/serve/kv_cache.h"

#include <stdexcept>

namespace moesim::serve {

bool KvCache::allocate(int n) {
  if (n < 0) throw std::logic_error("KvCache::allocate: negative block count");
  if (n > free_blocks()) return false;
  used_ += n;
  if (used_ > peak_) peak_ = used_;
  return true;
}

void KvCache::release(int n) {
  if (n < 0 || n > used_) throw std::logic_error("KvCache::release: more blocks returned than held");
  used_ -= n;
}

}  // namespace moesim::serve
