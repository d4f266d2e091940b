// Fixed dimensions of the node-wide shared tables. They are part of the shared-memory layout:
// changing one changes the segment's layout version
// (coordinator/include/xpu/coordinator/layout.hpp).
#pragma once

#include <cstdint>

namespace xpu {

inline constexpr std::uint32_t kMaxDevices = 64;  // GPUs (or MIG instances) per node
inline constexpr std::uint32_t kMaxSlots = 256;   // processes using the shim at once, node-wide
inline constexpr std::uint32_t kMaxGroups = 256;  // groups sharing quotas

}  // namespace xpu
