// Strong integer ids: no implicit conversion to or from int.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>

namespace moesim {

template <class Tag>
class Id {
 public:
  constexpr Id() = default;
  constexpr explicit Id(std::uint32_t v) : v_(v) {}
  constexpr std::uint32_t value() const { return v_; }
  friend constexpr auto operator<=>(Id, Id) = default;

 private:
  std::uint32_t v_ = 0;
};

using NodeId = Id<struct NodeTag>;
using LinkId = Id<struct LinkTag>;
using GpuId = Id<struct GpuTag>;
using ExpertId = Id<struct ExpertTag>;
using RequestId = Id<struct RequestTag>;

}  // namespace moesim

template <class Tag>
struct std::hash<moesim::Id<Tag>> {
  std::size_t operator()(moesim::Id<Tag> id) const noexcept { return std::hash<std::uint32_t>{}(id.value()); }
};
