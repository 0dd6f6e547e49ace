#include "sim/hw/indexed_heap.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <utility>

#include "sim/core/rng.h"

namespace moesim {
namespace {

TEST(IndexedMinHeap, TopIsTheSmallestKeyTiesToTheLowerId) {
  IndexedMinHeap h;
  h.set(7, 30);
  h.set(3, 10);
  h.set(5, 10);
  EXPECT_EQ(h.top(), 3u);
  h.set(3, 40);  // a later key moves it down
  EXPECT_EQ(h.top(), 5u);
  h.erase(5);
  EXPECT_EQ(h.top(), 7u);
  EXPECT_EQ(h.top_key(), 30);
  EXPECT_FALSE(h.contains(5));
  EXPECT_EQ(h.size(), 2u);
}

// Random inserts, key changes and erasures against an ordered set of (key, id).
TEST(IndexedMinHeap, MatchesAnOrderedSetUnderRandomOperations) {
  IndexedMinHeap h;
  std::set<std::pair<std::int64_t, std::uint32_t>> model;
  std::map<std::uint32_t, std::int64_t> key_of;
  Rng rng(21);
  for (int step = 0; step < 50000; ++step) {
    const auto id = static_cast<std::uint32_t>(rng.uniform_int(300));
    const double u = rng.uniform01();
    if (u < 0.6) {
      const auto key = static_cast<std::int64_t>(rng.uniform_int(1000));  // small range: many equal keys
      if (key_of.count(id)) model.erase({key_of[id], id});
      h.set(id, key);
      key_of[id] = key;
      model.insert({key, id});
    } else if (u < 0.8) {
      if (key_of.count(id)) model.erase({key_of[id], id});
      key_of.erase(id);
      h.erase(id);
    } else if (!model.empty()) {  // pop the top
      ASSERT_EQ(h.top(), model.begin()->second);
      h.erase(h.top());
      key_of.erase(model.begin()->second);
      model.erase(model.begin());
    }
    ASSERT_EQ(h.size(), model.size());
    ASSERT_EQ(h.contains(id), key_of.count(id) == 1);
    if (!model.empty()) {
      ASSERT_EQ(h.top(), model.begin()->second) << "step " << step;
      ASSERT_EQ(h.top_key(), model.begin()->first);
    }
  }
}

}  // namespace
}  // namespace moesim
