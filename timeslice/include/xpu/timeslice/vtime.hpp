// Virtual time: how groups are ordered for the next slice.
//
// A group's vtime grows by gpu_ns * 100 / share for the GPU time it was charged, so under
// contention picking the smallest vtime hands out GPU time in proportion to the shares (weighted
// fair queueing). Values live modulo 2^64 and are compared by signed distance (like TCP sequence
// numbers): a huge or corrupted value can never overflow anything, it is just "far ahead" or "far
// behind", and the arbiter clamps distances from the per-priority floor.
#pragma once

#include <algorithm>
#include <cstdint>

#include "xpu/timeslice/types.hpp"

namespace xpu::timeslice::vtime {

/// Longest GPU time one report may carry (~4.9 h); keeps every product below 2^63.
inline constexpr std::uint64_t kMaxChargeNs = std::uint64_t{1} << 44;

constexpr std::uint32_t clamp_share(std::uint32_t share) noexcept {
  return std::clamp(share, kMinSharePercent, kMaxSharePercent);
}

/// The vtime advance for `gpu_ns` of GPU time at `share` percent.
constexpr std::uint64_t weighted(std::uint64_t gpu_ns, std::uint32_t share) noexcept {
  return std::min(gpu_ns, kMaxChargeNs) * 100U / clamp_share(share);
}

/// Signed distance a - b on the circle (C++20 defines the conversion as two's complement).
constexpr std::int64_t distance(std::uint64_t a, std::uint64_t b) noexcept {
  return static_cast<std::int64_t>(a - b);
}

/// The farthest a legitimate group can be ahead of the floor: `lead_gpu_ns` of GPU time at its
/// share (a 1% group that just ran one slice is legitimately far ahead in vtime units).
constexpr std::int64_t max_lead(std::int64_t lead_gpu_ns, std::uint32_t share) noexcept {
  return static_cast<std::int64_t>(weighted(static_cast<std::uint64_t>(lead_gpu_ns), share));
}

/// Distance from the floor, clamped to [-max_lag, lead].
constexpr std::int64_t clamp_distance(std::int64_t d, std::int64_t max_lag,
                                      std::int64_t lead) noexcept {
  return std::clamp(d, -max_lag, lead);
}

}  // namespace xpu::timeslice::vtime
