// Pure arithmetic: virtual time, the cap budget, tunables.
#include <cstdint>
#include <limits>

#include "ts_test_support.hpp"
#include "xpu/timeslice/cap_budget.hpp"
#include "xpu/timeslice/tunables.hpp"
#include "xpu/timeslice/vtime.hpp"

namespace xpu::timeslice::test {
namespace {

TEST_CASE("vtime: charges are weighted by share and saturate", "[timeslice][math]") {
  CHECK(vtime::weighted(1'000, 100) == 1'000);
  CHECK(vtime::weighted(1'000, 50) == 2'000);
  CHECK(vtime::weighted(3'000, 30) == 10'000);
  CHECK(vtime::weighted(1'000, 0) == 100'000);                         // share 0 counts as 1%
  CHECK(vtime::weighted(1'000, 500) == 1'000);                         // share > 100 counts as 100%
  CHECK(vtime::weighted(UINT64_MAX, 1) == vtime::kMaxChargeNs * 100);  // no overflow
}

TEST_CASE("vtime: distances work across the wrap", "[timeslice][math]") {
  CHECK(vtime::distance(10, 5) == 5);
  CHECK(vtime::distance(5, 10) == -5);
  CHECK(vtime::distance(3, UINT64_MAX - 2) == 6);
  CHECK(vtime::distance(UINT64_MAX - 2, 3) == -6);
  CHECK(vtime::clamp_distance(INT64_MAX, 100, 50) == 50);
  CHECK(vtime::clamp_distance(INT64_MIN, 100, 50) == -100);
  CHECK(vtime::max_lead(1'000, 10) == 10'000);
}

TEST_CASE("cap: budget arithmetic", "[timeslice][math]") {
  const cap::Params p{5 * kMs, 50 * kMs, 10 * kS};
  const Nanos now = 100 * kS;
  CHECK(cap::cost(3 * kMs, 30) == 10 * kMs);
  // Idle banks at most the burst.
  CHECK(cap::sanitize(0, now, p) == now - 50 * kMs);
  CHECK(cap::charged(0, now, 10 * kMs, p) == now - 40 * kMs);
  // Corrupt values are clamped, extremes do not overflow.
  CHECK(cap::sanitize(std::numeric_limits<Nanos>::max(), now, p) == now + 10 * kS);
  CHECK(cap::sanitize(std::numeric_limits<Nanos>::min(), now, p) == now - 50 * kMs);
  CHECK(cap::charged(std::numeric_limits<Nanos>::max(), now, 1 * kS, p) == now + 10 * kS);
  // Ready when tat + in-flight cost <= now + ahead.
  CHECK(cap::ready_at(now + 10 * kMs, now, 2 * kMs, p) == now + 7 * kMs);
  CHECK(cap::throttled(now + 6 * kMs, now, p));
  CHECK_FALSE(cap::throttled(now + 5 * kMs, now, p));
}

TEST_CASE("tunables: sanitized keeps every lease below the garbage threshold",
          "[timeslice][math]") {
  Tunables wild;
  wild.slice_ns = -5;
  wild.inflight_lease_ns = std::numeric_limits<Nanos>::max();
  wild.want_lease_ns = 0;
  wild.presence_lease_ns = std::numeric_limits<Nanos>::max();
  wild.wait_poll_ns = 0;
  wild.max_inflight_launches = 0;
  wild.share_window_ns = 0;
  const Tunables t = sanitized(wild);
  CHECK(t.slice_ns >= 1 * kMs);
  CHECK(t.inflight_lease_ns < kMaxLeaseAheadNs);
  CHECK(t.presence_lease_ns < kMaxLeaseAheadNs);
  CHECK(t.want_lease_ns >= 2 * t.wait_poll_ns);
  CHECK(t.wait_poll_ns > 0);
  CHECK(t.max_inflight_launches >= 1);
  CHECK(t.share_window_ns > 0);
  // Defaults pass through unchanged.
  const Tunables d;
  const Tunables s = sanitized(d);
  CHECK(s.slice_ns == d.slice_ns);
  CHECK(s.inflight_lease_ns == d.inflight_lease_ns);
  CHECK(s.cap_burst_ns == d.cap_burst_ns);
  CHECK(s.presence_lease_ns == d.presence_lease_ns);
  CHECK(s.max_drain_wait_ns == d.max_drain_wait_ns);
  CHECK(s.drain_poll_ns == d.drain_poll_ns);
  CHECK(s.drain_tick_ns == d.drain_tick_ns);
}

TEST_CASE("tunables: the exclusive hand-over's tunables are clamped", "[timeslice][math]") {
  const Tunables d;
  CHECK(d.max_drain_wait_ns > d.contended_inflight_ns);  // a bounded drain fits
  Tunables wild;
  wild.drain_poll_ns = 0;
  wild.max_drain_wait_ns = 10 * kS;
  wild.drain_tick_ns = 1 * kS;
  Tunables t = sanitized(wild);
  CHECK(t.drain_poll_ns >= 1 * kUs);
  CHECK(t.max_drain_wait_ns == 100 * kMs);
  CHECK(t.drain_tick_ns == t.active_tick_ns);
  wild.drain_poll_ns = 200 * kUs;
  wild.max_drain_wait_ns = 1;
  wild.drain_tick_ns = -5;
  t = sanitized(wild);
  CHECK(t.max_drain_wait_ns == 200 * kUs);  // at least one poll
  CHECK(t.drain_tick_ns >= 1 * kUs);
  wild.max_drain_wait_ns = -1;
  CHECK(sanitized(wild).max_drain_wait_ns == 200 * kUs);
  wild.max_drain_wait_ns = 0;  // off
  CHECK(sanitized(wild).max_drain_wait_ns == 0);
  // A preempting holder never waits longer than any holder, nor a negative time.
  CHECK(d.preempt_drain_wait_ns == 0);
  wild.max_drain_wait_ns = 6 * kMs;
  wild.preempt_drain_wait_ns = 1 * kS;
  CHECK(sanitized(wild).preempt_drain_wait_ns == 6 * kMs);
  wild.preempt_drain_wait_ns = -1;
  CHECK(sanitized(wild).preempt_drain_wait_ns == 0);
  wild.max_drain_wait_ns = 0;
  wild.preempt_drain_wait_ns = 2 * kMs;
  CHECK(sanitized(wild).preempt_drain_wait_ns == 0);
}

}  // namespace
}  // namespace xpu::timeslice::test
