#include <algorithm>

#include "xpu/timeslice/tunables.hpp"

namespace xpu::timeslice {

namespace {
constexpr Nanos kUs = 1'000;
constexpr Nanos kMs = 1'000'000;
constexpr Nanos kS = 1'000'000'000;
}  // namespace

Tunables sanitized(const Tunables& in) noexcept {
  // Leases must stay below kMaxLeaseAheadNs (longer ones would read as garbage) and above the
  // periods that renew them; polls must be positive so that waits make progress.
  Tunables t = in;
  t.slice_ns = std::clamp(t.slice_ns, 1 * kMs, 1 * kS);
  t.idle_grace_ns = std::clamp(t.idle_grace_ns, 50 * kUs, 500 * kMs);
  t.active_tick_ns = std::clamp(t.active_tick_ns, 50 * kUs, 100 * kMs);
  t.idle_tick_ns = std::clamp(t.idle_tick_ns, t.active_tick_ns, 400 * kMs);
  t.inflight_lease_ns = std::clamp(t.inflight_lease_ns, 2 * t.active_tick_ns, kMaxLeaseAheadNs / 2);
  t.pickup_grace_ns = std::clamp(t.pickup_grace_ns, 100 * kUs, kMaxLeaseAheadNs / 2);
  t.wait_poll_ns = std::clamp(t.wait_poll_ns, 10 * kUs, 100 * kMs);
  t.want_lease_ns = std::clamp(t.want_lease_ns, 2 * t.wait_poll_ns, kMaxLeaseAheadNs / 2);
  t.presence_lease_ns = std::clamp(t.presence_lease_ns, 2 * t.idle_tick_ns, kMaxLeaseAheadNs / 2);
  t.inflight_poll_ns = std::clamp(t.inflight_poll_ns, 1 * kUs, 100 * kMs);
  t.drain_poll_ns = std::clamp(t.drain_poll_ns, 1 * kUs, 100 * kMs);
  // 0 means "no exclusive hand-over"; anything else covers at least one poll.
  if (t.max_drain_wait_ns != 0) {
    t.max_drain_wait_ns = std::clamp(t.max_drain_wait_ns, t.drain_poll_ns, 100 * kMs);
  }
  t.drain_tick_ns = std::clamp(t.drain_tick_ns, 1 * kUs, t.active_tick_ns);
  t.contended_inflight_ns = std::clamp(t.contended_inflight_ns, 0 * kUs, 10 * kS);
  t.low_inflight_ns = std::clamp(t.low_inflight_ns, 0 * kUs, 10 * kS);
  t.max_inflight_launches = std::clamp(t.max_inflight_launches, 1U, 1U << 20);
  t.default_launch_ns = std::clamp(t.default_launch_ns, 100 * Nanos{1}, 1 * kS);
  t.inflight_stuck_ns = std::clamp(t.inflight_stuck_ns, 100 * kMs, 3600 * kS);
  t.cap_ahead_ns = std::clamp(t.cap_ahead_ns, 0 * kMs, 10 * kS);
  t.cap_burst_ns = std::clamp(t.cap_burst_ns, 0 * kMs, 10 * kS);
  t.cap_max_debt_ns = std::clamp(t.cap_max_debt_ns, t.cap_ahead_ns + 1 * kMs, 3600 * kS);
  t.cap_poll_ns = std::clamp(t.cap_poll_ns, 10 * kUs, 100 * kMs);
  t.fresh_gap_ns = std::clamp(t.fresh_gap_ns, 1 * kMs, 10 * kS);
  t.vtime_max_lag_ns = std::clamp(t.vtime_max_lag_ns, 10 * kMs, 3600 * kS);
  t.vtime_max_lead_gpu_ns = std::clamp(t.vtime_max_lead_gpu_ns, 10 * kMs, 3600 * kS);
  t.track_linger_ns = std::clamp(t.track_linger_ns, 0 * kMs, 3600 * kS);
  t.heartbeat_period_ns = std::clamp(t.heartbeat_period_ns, 0 * kMs, t.idle_tick_ns);
  t.stale_after_ns = std::clamp(t.stale_after_ns, 2 * t.idle_tick_ns, 60 * kS);
  t.reap_period_ns = std::clamp(t.reap_period_ns, 1 * kMs, 60 * kS);
  t.share_window_ns = std::clamp(t.share_window_ns, 10 * kMs, 3600 * kS);
  return t;
}

}  // namespace xpu::timeslice
