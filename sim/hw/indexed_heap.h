// A binary min-heap of small integer ids keyed by int64, with the position of
// each id tracked so that a key can be changed or removed in O(log n) (no
// stale entries). Ties go to the lower id, so the order is deterministic.
#pragma once

#include <cstdint>
#include <vector>

namespace moesim {

class IndexedMinHeap {
 public:
  [[nodiscard]] bool empty() const { return heap_.empty(); }
  [[nodiscard]] std::size_t size() const { return heap_.size(); }
  [[nodiscard]] bool contains(std::uint32_t id) const { return id < pos_.size() && pos_[id] != kAbsent; }
  [[nodiscard]] std::uint32_t top() const { return heap_.front(); }
  [[nodiscard]] std::int64_t top_key() const { return key_[heap_.front()]; }

  // Inserts id or changes its key.
  void set(std::uint32_t id, std::int64_t key) {
    if (id >= pos_.size()) {
      pos_.resize(id + 1, kAbsent);
      key_.resize(id + 1, 0);
    }
    if (pos_[id] == kAbsent) {
      key_[id] = key;
      pos_[id] = static_cast<std::uint32_t>(heap_.size());
      heap_.push_back(id);
      up(pos_[id]);
      return;
    }
    const std::int64_t old = key_[id];
    key_[id] = key;
    if (key < old) {
      up(pos_[id]);
    } else {
      down(pos_[id]);
    }
  }

  void erase(std::uint32_t id) {
    if (!contains(id)) return;
    const std::uint32_t i = pos_[id];
    const std::uint32_t last = heap_.back();
    heap_.pop_back();
    pos_[id] = kAbsent;
    if (last == id) return;
    heap_[i] = last;
    pos_[last] = i;
    up(i);
    down(pos_[last]);
  }

 private:
  static constexpr std::uint32_t kAbsent = 0xffffffffu;
  [[nodiscard]] bool less(std::uint32_t a, std::uint32_t b) const {
    return key_[a] < key_[b] || (key_[a] == key_[b] && a < b);
  }
  void place(std::uint32_t i, std::uint32_t id) {
    heap_[i] = id;
    pos_[id] = i;
  }
  void up(std::uint32_t i) {
    const std::uint32_t id = heap_[i];
    while (i > 0) {
      const std::uint32_t parent = (i - 1) / 2;
      if (!less(id, heap_[parent])) break;
      place(i, heap_[parent]);
      i = parent;
    }
    place(i, id);
  }
  void down(std::uint32_t i) {
    const std::uint32_t id = heap_[i];
    const auto n = static_cast<std::uint32_t>(heap_.size());
    while (true) {
      std::uint32_t c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && less(heap_[c + 1], heap_[c])) ++c;
      if (!less(heap_[c], id)) break;
      place(i, heap_[c]);
      i = c;
    }
    place(i, id);
  }

  std::vector<std::uint32_t> heap_;
  std::vector<std::uint32_t> pos_;
  std::vector<std::int64_t> key_;
};

}  // namespace moesim
