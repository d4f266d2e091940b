// Plain value types of the time-slice scheduler: its API and its shared-memory table use only
// these.
#pragma once

#include <cstdint>

namespace xpu::timeslice {

/// Nanoseconds on CLOCK_MONOTONIC. That clock is node-wide, so values from different processes
/// compare.
using Nanos = std::int64_t;

inline constexpr std::uint32_t kMaxDevices =
    64;  // the coordinator keeps one DeviceSchedule per device
inline constexpr std::uint32_t kMaxSlots = 256;   // process slots, node-wide
inline constexpr std::uint32_t kMaxGroups = 256;  // groups share one entitlement
inline constexpr std::uint32_t kMinSharePercent = 1;
inline constexpr std::uint32_t kMaxSharePercent = 100;

/// kShare: work-conserving weight (idle time goes to whoever has work). kCap: a hard ceiling, even
/// alone.
enum class Mode : std::uint8_t { kShare = 0, kCap = 1 };

/// Numeric order is precedence order: a higher value preempts a lower one at its next launch.
enum class Priority : std::uint8_t { kLow = 0, kNormal = 1, kHigh = 2 };
inline constexpr std::uint32_t kPriorityLevels = 3;

constexpr std::uint32_t priority_index(Priority p) noexcept {
  return static_cast<std::uint32_t>(p);
}

}  // namespace xpu::timeslice
