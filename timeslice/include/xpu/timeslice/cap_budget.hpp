// Cap mode: a GPU-time budget refilled at pct x wall time, kept as one number (GCRA).
//
// `tat` (theoretical arrival time) is the wall time at which the group's budget is back to zero.
// Using g ns of GPU at p percent costs g * 100 / p ns of wall time: tat += cost. Time spent idle is
// banked only up to `burst` (tat never lags now by more than that). The group may submit while
// tat + cost(work already in flight) <= now + ahead, so it runs in short chunks and then rests;
// over any long interval its GPU time stays within pct of wall time plus a constant (ahead+burst).
// One atomic word per group, updated by CAS: no lock, and a corrupted value is clamped on use.
#pragma once

#include <algorithm>
#include <cstdint>

#include "xpu/timeslice/types.hpp"
#include "xpu/timeslice/vtime.hpp"

namespace xpu::timeslice::cap {

struct Params {
  Nanos ahead_ns;     // may run this far (wall) ahead of its budget: the length of a chunk
  Nanos burst_ns;     // idle time banks at most this much wall time
  Nanos max_debt_ns;  // tat beyond now + this is corruption (or a giant kernel at a tiny cap)
};

/// Wall time that `gpu_ns` of GPU costs at `pct` percent.
constexpr Nanos cost(std::uint64_t gpu_ns, std::uint32_t pct) noexcept {
  return static_cast<Nanos>(vtime::weighted(gpu_ns, pct));
}

/// `tat` as read from shared memory, brought into [now - burst, now + max_debt].
constexpr Nanos sanitize(Nanos tat, Nanos now, const Params& p) noexcept {
  return std::clamp(tat, now - p.burst_ns, now + p.max_debt_ns);
}

/// tat after charging `cost_ns` (computed from a sanitised tat, so no overflow).
constexpr Nanos charged(Nanos tat, Nanos now, Nanos cost_ns, const Params& p) noexcept {
  return std::min(sanitize(tat, now, p) + cost_ns, now + p.max_debt_ns);
}

/// Earliest time a submission is allowed, given `inflight_cost` of work not yet charged.
constexpr Nanos ready_at(Nanos tat, Nanos now, Nanos inflight_cost, const Params& p) noexcept {
  return sanitize(tat, now, p) + inflight_cost - p.ahead_ns;
}

/// A group is throttled (not a candidate for the device) while its budget is overdrawn.
constexpr bool throttled(Nanos tat, Nanos now, const Params& p) noexcept {
  return sanitize(tat, now, p) > now + p.ahead_ns;
}

}  // namespace xpu::timeslice::cap
