// Timing constants of the scheduler; the defaults are what the README justifies. Every process on
// a device should use the same values: each applies its own XPU_SCHED_TUNABLES (apply_overrides)
// and nothing checks that they agree, so leave them alone unless experimenting.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "xpu/timeslice/cap_budget.hpp"
#include "xpu/timeslice/types.hpp"

namespace xpu::timeslice {

struct Tunables {
  // Slices and hand-over.
  Nanos slice_ns = 20'000'000;            // a holder keeps the device this long while others wait
  Nanos idle_grace_ns = 500'000;          // holder still "busy" this long after a launch / its last
                                          // completion (also the high-priority hold-over)
  Nanos inflight_lease_ns = 20'000'000;   // busy lease a tick renews while work is in flight; a
                                          // killed holder is passed over after at most this
  Nanos pickup_grace_ns = 5'000'000;      // a newly picked holder must launch within this
  Nanos want_lease_ns = 5'000'000;        // a waiter's demand stays visible this long after a poll
  Nanos presence_lease_ns = 250'000'000;  // "a process of priority p is joined" lease (ticks renew)
  Nanos wait_poll_ns = 500'000;           // longest sleep of a waiting launch
  Nanos inflight_poll_ns = 100'000;       // retry delay when the in-flight bound says wait

  // Exclusive hand-over: a new holder starts only once the previous holder's queued work drained.
  Nanos max_drain_wait_ns = 6'000'000;  // a holder waits for the drain only while its slice is
                                        // younger than this (> contended_inflight_ns, so a bounded
                                        // drain fits); 0 turns the exclusive hand-over off
  Nanos drain_poll_ns = 50'000;         // retry delay of a holder waiting for a drain
  Nanos drain_tick_ns = 50'000;         // watcher period of a process whose drain is waited for
  Nanos preempt_drain_wait_ns = 0;      // the same limit for a holder that preempted a lower
                                        // priority: 0, it launches at once (its launch thread is
                                        // not blocked; the GPU runs the sliver first anyway)

  // In-flight bounds (estimated GPU time of tracked launches not yet completed).
  Nanos contended_inflight_ns = 4'000'000;  // holder while someone of >= priority waits
  Nanos low_inflight_ns = 100'000;          // while a higher-priority process is joined
  std::uint32_t max_inflight_launches = 1024;
  Nanos default_launch_ns = 200'000;         // GPU time per launch until measured
  Nanos inflight_stuck_ns = 10'000'000'000;  // no completion for this long: forget the count

  // Cap mode (see cap_budget.hpp).
  Nanos cap_ahead_ns = 5'000'000;
  Nanos cap_burst_ns = 50'000'000;  // > slice_ns + drain: a capped group waiting out another's
                                    // slice must not lose the budget it earned meanwhile
  Nanos cap_max_debt_ns = 10'000'000'000;
  Nanos cap_poll_ns = 2'000'000;

  // Virtual time.
  Nanos fresh_gap_ns = 20'000'000;              // idle longer than this: catch up on return
  Nanos vtime_max_lag_ns = 2'000'000'000;       // behind the floor by more: corruption, clamp
  Nanos vtime_max_lead_gpu_ns = 1'000'000'000;  // ahead by more GPU time than this: clamp

  // Ticks, liveness, status.
  Nanos probe_period_ns = 5'000'000;      // highest class beside lower ones: one sampled
                                          // (tracked) launch per period teaches launch cost
  Nanos track_linger_ns = 1'000'000'000;  // keep tracking this long after contention was seen
  Nanos active_tick_ns = 1'000'000;       // advised watcher period while work is in flight (but
                                          // drain_tick_ns while another holder waits for it)
  Nanos idle_tick_ns = 50'000'000;        // ... and otherwise
  Nanos heartbeat_period_ns = 10'000'000;
  Nanos stale_after_ns = 200'000'000;  // heartbeat older than this: ask liveness
  Nanos reap_period_ns = 100'000'000;
  Nanos share_window_ns = 2'000'000'000;  // delivered share covers the last 1-2 windows

  cap::Params cap_params() const noexcept { return {cap_ahead_ns, cap_burst_ns, cap_max_debt_ns}; }
};

/// Leases never legitimately reach further ahead than this; a lease that does is garbage.
inline constexpr Nanos kMaxLeaseAheadNs = 2'000'000'000;

/// `t` with every field clamped to a range the algorithm is correct for.
Tunables sanitized(const Tunables& t) noexcept;

/// Applies overrides written as "name=value[,name=value...]" (XPU_SCHED_TUNABLES): names are the
/// fields above without "_ns"; durations take a unit (ns, us, ms, s), max_inflight_launches is a
/// count. Returns "" on success, else what is wrong. Values are then clamped by sanitized().
std::string apply_overrides(Tunables& t, std::string_view text);
/// The accepted names, for messages and docs.
std::string override_names();

}  // namespace xpu::timeslice
