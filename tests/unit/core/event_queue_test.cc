#include "sim/core/event_queue.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

namespace moesim {
namespace {

Time ps(std::int64_t v) { return Time{Duration{v}}; }

std::vector<int> drain(EventQueue& q, Time until = kTimeMax) {
  std::vector<int> order;
  EventQueue::Popped ev;
  while (q.pop_until(until, ev)) {
    order.push_back(static_cast<int>(ev.tag.entity));
    ev.cb();
  }
  return order;
}

TEST(EventQueue, PopsInTimeOrder) {
  EventQueue q;
  q.push(ps(30), [] {}, {0, 3});
  q.push(ps(10), [] {}, {0, 1});
  q.push(ps(20), [] {}, {0, 2});
  EXPECT_EQ(q.size(), 3u);
  EXPECT_EQ(q.next_time(), ps(10));
  EXPECT_EQ(drain(q), (std::vector<int>{1, 2, 3}));
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.next_time(), kTimeMax);
}

TEST(EventQueue, PopsEqualTimesInInsertionOrder) {
  EventQueue q;
  // 100 events at the same time, interleaved with earlier and later ones.
  for (int i = 0; i < 100; ++i) {
    q.push(ps(50), [] {}, {0, static_cast<std::uint64_t>(i)});
    q.push(ps(i % 2 == 0 ? 10 : 90), [] {}, {0, 1000});
  }
  const auto order = drain(q);
  ASSERT_EQ(order.size(), 200u);
  // First the 50 events at t=10, then the 100 at t=50 in insertion order 0..99.
  for (int i = 0; i < 100; ++i) EXPECT_EQ(order[50 + i], i);
}

TEST(EventQueue, LazyCancelSkipsCancelledEvents) {
  EventQueue q;
  int ran = 0;
  const EventId a = q.push(ps(1), [&] { ran += 1; }, {0, 1});
  const EventId b = q.push(ps(2), [&] { ran += 10; }, {0, 2});
  q.push(ps(3), [&] { ran += 100; }, {0, 3});
  EXPECT_TRUE(q.cancel(b));
  EXPECT_FALSE(q.cancel(b));  // twice: already cancelled
  EXPECT_FALSE(q.pending(b));
  EXPECT_TRUE(q.pending(a));
  EXPECT_EQ(q.size(), 2u);
  EXPECT_EQ(q.heap_size(), 3u);  // the stale record stays until it is reached
  EXPECT_EQ(drain(q), (std::vector<int>{1, 3}));
  EXPECT_EQ(ran, 101);
  EXPECT_FALSE(q.cancel(a));  // already ran
}

TEST(EventQueue, ReusedSlotDoesNotResurrectCancelledEvent) {
  EventQueue q;
  const EventId a = q.push(ps(5), [] {}, {0, 1});
  ASSERT_TRUE(q.cancel(a));
  // The new event takes a's slot; a's stale heap record (t=5) must not run it early.
  const EventId b = q.push(ps(9), [] {}, {0, 2});
  EXPECT_EQ(b.slot, a.slot);
  EXPECT_NE(b.seq, a.seq);
  EXPECT_FALSE(q.cancel(a));
  EXPECT_EQ(q.next_time(), ps(9));
  EXPECT_EQ(drain(q), (std::vector<int>{2}));
}

TEST(EventQueue, PopUntilStopsAtLimit) {
  EventQueue q;
  q.push(ps(10), [] {}, {0, 1});
  q.push(ps(20), [] {}, {0, 2});
  EXPECT_EQ(drain(q, ps(15)), (std::vector<int>{1}));
  EXPECT_EQ(q.size(), 1u);
  EXPECT_EQ(drain(q, ps(20)), (std::vector<int>{2}));  // inclusive
}

TEST(EventQueue, ManyRandomEventsComeOutSorted) {
  EventQueue q;
  std::uint64_t x = 12345;
  for (int i = 0; i < 5000; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    q.push(ps(static_cast<std::int64_t>(x >> 54)), [] {}, {0, static_cast<std::uint64_t>(i)});
  }
  EventQueue::Popped ev;
  std::int64_t last_t = -1;
  std::uint64_t last_seq = 0;
  int n = 0;
  while (q.pop_until(kTimeMax, ev)) {
    const auto t = ev.time.time_since_epoch().count();
    EXPECT_TRUE(t > last_t || (t == last_t && ev.seq > last_seq));
    last_t = t;
    last_seq = ev.seq;
    ++n;
  }
  EXPECT_EQ(n, 5000);
}

TEST(EventQueue, PushAfterPeekAtAnEarlierTimeStillPopsInOrder) {
  EventQueue q;
  q.push(ps(1000), [] {}, {0, 1});
  q.push(ps(1000), [] {}, {0, 2});
  q.push(ps(5000), [] {}, {0, 3});
  EXPECT_EQ(drain(q, ps(10)), std::vector<int>{});  // peeked: the minimum is now 1000
  EXPECT_EQ(q.next_time(), ps(1000));
  q.push(ps(20), [] {}, {0, 4});    // earlier than the peeked minimum, later than anything popped
  q.push(ps(1000), [] {}, {0, 5});  // equal time: after 1 and 2
  EXPECT_EQ(drain(q), (std::vector<int>{4, 1, 2, 5, 3}));
  EXPECT_THROW(q.push(ps(10), [] {}), std::logic_error);  // before the last popped (5000)
}

TEST(EventQueue, InterleavedPushPopMatchesASortedReference) {
  // A random monotone workload checked against a sorted list of (time, seq).
  EventQueue q;
  std::vector<std::pair<std::int64_t, int>> ref;
  std::uint64_t x = 99;
  auto rnd = [&] { return x = x * 6364136223846793005ull + 1442695040888963407ull, x >> 33; };
  std::int64_t now = 0;
  int id = 0;
  std::vector<EventId> ids;
  for (int round = 0; round < 20000; ++round) {
    const int pushes = static_cast<int>(rnd() % 3);
    for (int k = 0; k < pushes; ++k) {
      const std::int64_t t = now + static_cast<std::int64_t>(rnd() % 4 == 0 ? 0 : rnd() % 100000);
      ids.push_back(q.push(ps(t), [] {}, {0, static_cast<std::uint64_t>(id)}));
      ref.emplace_back(t, id++);
    }
    if (rnd() % 7 == 0 && !ids.empty()) {
      const std::size_t victim = rnd() % ids.size();
      if (q.cancel(ids[victim])) {
        std::erase_if(ref, [&](const auto& r) { return r.second == static_cast<int>(victim); });
      }
    }
    if (!ref.empty() && rnd() % 2 == 0) {
      auto best = std::min_element(ref.begin(), ref.end());
      EventQueue::Popped ev;
      ASSERT_TRUE(q.pop_until(kTimeMax, ev));
      ASSERT_EQ(ev.time, ps(best->first));
      ASSERT_EQ(static_cast<int>(ev.tag.entity), best->second);
      now = best->first;
      ref.erase(best);
    }
  }
  EXPECT_EQ(q.size(), ref.size());
}

// Times spread over many hexadecimal digits (1 ps to 2^60 ps ahead), groups of
// equal times pushed at different moments (so they meet across
// redistributions), and cancellations, against a sorted reference of (time, id).
TEST(EventQueue, WideTimeSpreadEqualTimesAndCancelsMatchASortedReference) {
  EventQueue q;
  std::vector<std::pair<std::int64_t, int>> ref;  // (time, id): ids increase with insertion
  std::vector<std::pair<EventId, int>> ids;
  std::uint64_t x = 7;
  auto rnd = [&] { return x = x * 6364136223846793005ull + 1442695040888963407ull, x >> 11; };
  std::int64_t now = 0;
  std::vector<std::int64_t> recent;  // times already used, to push equal times later
  int id = 0;
  for (int round = 0; round < 30000; ++round) {
    for (int k = static_cast<int>(rnd() % 3); k > 0; --k) {
      std::int64_t t;
      const auto pick = rnd() % 8;
      if (pick == 0 && !recent.empty()) {
        t = recent[rnd() % recent.size()];  // an equal time, pushed later
        if (t < now) t = now;
      } else {
        const int bits = 1 + static_cast<int>(rnd() % 60);
        t = now + static_cast<std::int64_t>(rnd() & ((std::uint64_t{1} << bits) - 1));
      }
      recent.push_back(t);
      if (recent.size() > 64) recent.erase(recent.begin());
      ids.emplace_back(q.push(ps(t), [] {}, {0, static_cast<std::uint64_t>(id)}), id);
      ref.emplace_back(t, id++);
    }
    if (rnd() % 5 == 0 && !ids.empty()) {
      const auto [eid, victim] = ids[rnd() % ids.size()];
      if (q.cancel(eid)) std::erase_if(ref, [&](const auto& r) { return r.second == victim; });
    }
    if (!ref.empty() && rnd() % 2 == 0) {
      const auto best = std::min_element(ref.begin(), ref.end());
      EventQueue::Popped ev;
      ASSERT_TRUE(q.pop_until(kTimeMax, ev));
      ASSERT_EQ(ev.time, ps(best->first)) << "round " << round;
      ASSERT_EQ(static_cast<int>(ev.tag.entity), best->second) << "round " << round;
      now = best->first;
      ref.erase(best);
    }
  }
  EXPECT_EQ(q.size(), ref.size());
  std::sort(ref.begin(), ref.end());
  EXPECT_EQ(drain(q), [&] {
    std::vector<int> v;
    for (const auto& r : ref) v.push_back(r.second);
    return v;
  }());
}

}  // namespace
}  // namespace moesim
