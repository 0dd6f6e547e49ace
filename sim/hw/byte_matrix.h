// Bytes sent between the members of a GPU group: at(i, j) = bytes from member
// i to member j (the MoE dispatch / combine traffic). Row-major, diagonal
// ignored by the collectives (a GPU does not send to itself over the network).
#pragma once

#include <cstddef>
#include <stdexcept>
#include <vector>

#include "sim/core/units.h"

namespace moesim {

class ByteMatrix {
 public:
  explicit ByteMatrix(std::size_t n) : n_(n), v_(n * n, 0.0) {}
  // Every off-diagonal entry = per_peer.
  static ByteMatrix uniform(std::size_t n, Bytes per_peer) {
    ByteMatrix m(n);
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t j = 0; j < n; ++j) {
        if (i != j) m.v_[i * n + j] = per_peer.value();
      }
    }
    return m;
  }
  [[nodiscard]] std::size_t size() const { return n_; }
  [[nodiscard]] double at(std::size_t i, std::size_t j) const { return v_[i * n_ + j]; }
  void set(std::size_t i, std::size_t j, Bytes b) {
    if (!(b.value() >= 0)) throw std::invalid_argument("ByteMatrix: bytes must be >= 0");
    v_[i * n_ + j] = b.value();
  }
  // Bytes member i sends to others / receives from others (diagonal excluded).
  [[nodiscard]] double sent(std::size_t i) const {
    double s = 0;
    for (std::size_t j = 0; j < n_; ++j) s += j == i ? 0.0 : at(i, j);
    return s;
  }
  [[nodiscard]] double received(std::size_t j) const {
    double s = 0;
    for (std::size_t i = 0; i < n_; ++i) s += j == i ? 0.0 : at(i, j);
    return s;
  }
  [[nodiscard]] const std::vector<double>& data() const { return v_; }

 private:
  std::size_t n_;
  std::vector<double> v_;
};

}  // namespace moesim
