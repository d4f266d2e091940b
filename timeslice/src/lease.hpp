// Leases: "X holds until time T" timestamps in shared memory. A lease expires on its own, so a
// process killed while holding one blocks nobody past T. A lease reaching further ahead than
// kMaxLeaseAheadNs cannot have been written by a live process: it is garbage and counts as expired.
#pragma once

#include <algorithm>
#include <atomic>

#include "xpu/timeslice/tunables.hpp"
#include "xpu/timeslice/types.hpp"

namespace xpu::timeslice::detail {

/// Largest `now` accepted; keeps now + any tunable far from overflow.
inline constexpr Nanos kMaxNow = Nanos{1} << 62;

constexpr Nanos sane_now(Nanos now) noexcept { return std::clamp<Nanos>(now, 0, kMaxNow); }

constexpr bool lease_garbage(Nanos until, Nanos now) noexcept {
  return until > now && until - now > kMaxLeaseAheadNs;
}

constexpr bool lease_live(Nanos until, Nanos now) noexcept {
  return until > now && until - now <= kMaxLeaseAheadNs;
}

/// The lease as a usable time: garbage reads as 0 (long expired).
constexpr Nanos lease_value(Nanos until, Nanos now) noexcept {
  return lease_garbage(until, now) ? 0 : until;
}

inline bool lease_live(const std::atomic<Nanos>& a, Nanos now) noexcept {
  return lease_live(a.load(std::memory_order_relaxed), now);
}

/// Extends a lease shared by several writers to at least `until` (never shortens a live one;
/// overwrites garbage).
inline void raise_lease(std::atomic<Nanos>& a, Nanos until, Nanos now) noexcept {
  Nanos cur = a.load(std::memory_order_relaxed);
  while (cur < until || lease_garbage(cur, now)) {
    if (a.compare_exchange_weak(cur, until, std::memory_order_relaxed)) return;
  }
}

/// Should a lease last written as `written` be renewed to `until`? Only once less than 3/4 of the
/// wanted length is left, so a busy launch loop writes shared memory about once per lease/4.
constexpr bool lease_needs_renewal(Nanos written, Nanos until, Nanos now) noexcept {
  return written < until - (until - now) / 4 || written > now + kMaxLeaseAheadNs;
}

}  // namespace xpu::timeslice::detail
