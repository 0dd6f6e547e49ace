// A 4-ary min-heap of small integer ids keyed by int64, with the position of
// each id tracked so that a key can be changed or removed in O(log n) (no
// stale entries). Ties go to the lower id, so the order is deterministic.
// Entries hold their key (no indirection in the comparisons); four children
// per node halve the depth of a binary heap, and a node's children share a
// cache line.
#pragma once

#include <cstdint>
#include <vector>

namespace moesim {

class IndexedMinHeap {
 public:
  [[nodiscard]] bool empty() const { return heap_.empty(); }
  [[nodiscard]] std::size_t size() const { return heap_.size(); }
  [[nodiscard]] bool contains(std::uint32_t id) const { return id < pos_.size() && pos_[id] != kAbsent; }
  [[nodiscard]] std::uint32_t top() const { return heap_.front().id; }
  [[nodiscard]] std::int64_t top_key() const { return heap_.front().key; }

  // Inserts id or changes its key.
  void set(std::uint32_t id, std::int64_t key) {
    if (id >= pos_.size()) pos_.resize(id + 1, kAbsent);
    if (pos_[id] == kAbsent) {
      heap_.push_back(Entry{key, id});
      up(static_cast<std::uint32_t>(heap_.size() - 1), Entry{key, id});
      return;
    }
    const std::uint32_t i = pos_[id];
    const std::int64_t old = heap_[i].key;
    if (key < old) {
      up(i, Entry{key, id});
    } else if (key > old) {
      down(i, Entry{key, id});
    }
  }

  void erase(std::uint32_t id) {
    if (!contains(id)) return;
    const std::uint32_t i = pos_[id];
    const Entry last = heap_.back();
    heap_.pop_back();
    pos_[id] = kAbsent;
    if (last.id == id) return;
    if (less(last, heap_[i])) {
      up(i, last);
    } else {
      down(i, last);
    }
  }

 private:
  struct Entry {
    std::int64_t key;
    std::uint32_t id;
  };
  static constexpr std::uint32_t kAbsent = 0xffffffffu;
  static bool less(const Entry& a, const Entry& b) { return a.key < b.key || (a.key == b.key && a.id < b.id); }
  void place(std::uint32_t i, const Entry& e) {
    heap_[i] = e;
    pos_[e.id] = i;
  }
  // Moves e, destined for slot i, towards the root.
  void up(std::uint32_t i, const Entry e) {
    while (i > 0) {
      const std::uint32_t parent = (i - 1) / 4;
      if (!less(e, heap_[parent])) break;
      place(i, heap_[parent]);
      i = parent;
    }
    place(i, e);
  }
  // Moves e, destined for slot i, towards the leaves.
  void down(std::uint32_t i, const Entry e) {
    const auto n = static_cast<std::uint32_t>(heap_.size());
    while (true) {
      const std::uint32_t first = 4 * i + 1;
      if (first >= n) break;
      std::uint32_t c = first;
      const std::uint32_t end = first + 4 < n ? first + 4 : n;
      for (std::uint32_t k = first + 1; k < end; ++k) {
        if (less(heap_[k], heap_[c])) c = k;
      }
      if (!less(heap_[c], e)) break;
      place(i, heap_[c]);
      i = c;
    }
    place(i, e);
  }

  std::vector<Entry> heap_;
  std::vector<std::uint32_t> pos_;
};

}  // namespace moesim
