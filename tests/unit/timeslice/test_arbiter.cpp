// The Arbiter API step by step on a fake clock: the exact decisions the adapter sees.
#include <algorithm>
#include <memory>

#include "ts_test_support.hpp"
#include "xpu/timeslice/arbiter.hpp"
#include "xpu/timeslice/clock.hpp"

namespace xpu::timeslice::test {
namespace {

struct Fixture {
  std::unique_ptr<DeviceSchedule> table = std::make_unique<DeviceSchedule>();
  FakeClock clock;
  Tunables t;
  std::unique_ptr<Arbiter> make(std::uint32_t slot) {
    return std::make_unique<Arbiter>(*table, slot, t);
  }
  // An arbiter for `slot`, already joined (the setup most cases start from).
  std::unique_ptr<Arbiter> joined(std::uint32_t slot, std::uint32_t group, std::uint32_t share,
                                  Mode mode = Mode::kShare, Priority prio = Priority::kNormal) {
    auto a = make(slot);
    REQUIRE(a->join(clock.now(), group, share, mode, prio));
    return a;
  }
  Nanos now() const { return clock.now(); }
  HolderWord holder() const { return decode_holder(table->holder.load()); }
};

TEST_CASE("arbiter: not joined or disabled means go, untracked", "[timeslice][arbiter]") {
  Fixture f;
  auto a = f.make(0);
  Decision d = a->before_launch(f.now());
  CHECK(d.go());
  CHECK_FALSE(d.track);
  Arbiter disabled(*f.table, 300);
  CHECK_FALSE(disabled.join(f.now(), 0, 50, Mode::kShare, Priority::kNormal));
  CHECK(disabled.before_launch(f.now()).go());
  disabled.on_launch(f.now());
  disabled.on_complete(f.now(), 1, 1000);
  (void)disabled.tick(f.now());
  CHECK_FALSE(a->join(f.now(), kMaxGroups, 50, Mode::kShare, Priority::kNormal));
}

TEST_CASE("arbiter: out-of-range configuration is clamped", "[timeslice][arbiter]") {
  Fixture f;
  auto a = f.make(0);
  REQUIRE(a->join(f.now(), 3, 0, static_cast<Mode>(9), static_cast<Priority>(7)));
  MemberConfig c = decode_config(f.table->slots[0].config.load());
  CHECK(c.present);
  CHECK(c.share_percent == 1);
  CHECK(c.mode == Mode::kShare);
  CHECK(c.priority == Priority::kNormal);
  REQUIRE(a->join(f.now(), 3, 1000, Mode::kCap, Priority::kHigh));
  c = decode_config(f.table->slots[0].config.load());
  CHECK(c.share_percent == 100);
  CHECK(c.mode == Mode::kCap);
  CHECK(decode_group_config(f.table->groups[3].config.load(), 3).present);
}

TEST_CASE("arbiter: a lone process takes the device once and then only reads",
          "[timeslice][arbiter]") {
  Fixture f;
  auto a = f.joined(0, 0, 30);
  Decision d = a->before_launch(f.now());
  REQUIRE(d.go());
  CHECK_FALSE(d.track);
  const std::uint64_t word = f.table->holder.load();
  CHECK(f.holder().present);
  CHECK(f.holder().group == 0);
  // Far past its slice: nobody waits, so it keeps going and never rewrites the holder word.
  for (int i = 0; i < 1000; ++i) {
    f.clock.advance(1 * kMs);
    d = a->before_launch(f.now());
    REQUIRE(d.go());
    CHECK_FALSE(d.track);
  }
  CHECK(f.table->holder.load() == word);
  CHECK(f.table->demand_until_ns[1].load() == 0);
}

TEST_CASE("arbiter: a waiter waits for the slice end, then the slice is handed over",
          "[timeslice][arbiter]") {
  Fixture f;
  auto a = f.joined(0, 0, 50);
  auto b = f.joined(1, 1, 50);
  REQUIRE(a->before_launch(f.now()).go());
  a->on_launch(f.now());
  const Nanos slice_start = f.now();

  f.clock.advance(1 * kMs);
  Decision d = b->before_launch(f.now());
  REQUIRE_FALSE(d.go());
  CHECK(d.reason == WaitReason::kOtherHolder);
  CHECK(d.track);
  CHECK(d.retry_at_ns > f.now());
  CHECK(d.retry_at_ns <= f.now() + f.t.wait_poll_ns);

  // The holder now sees demand: it tracks, and keeps a bounded amount in flight.
  d = a->before_launch(f.now());
  REQUIRE(d.go());
  CHECK(d.track);
  a->on_launch(f.now());

  // Its work runs; its watcher ticks (renewing its busy lease); the waiter polls.
  while (f.now() < slice_start + f.t.slice_ns - 1 * kMs) {
    f.clock.advance(500 * kUs);
    (void)a->tick(f.now());
    REQUIRE_FALSE(b->before_launch(f.now()).go());
  }
  // Just before the slice end the waiter is told to come back exactly at the end.
  f.clock.set(slice_start + f.t.slice_ns - 100 * kUs);
  d = b->before_launch(f.now());
  REQUIRE_FALSE(d.go());
  CHECK(d.retry_at_ns == slice_start + f.t.slice_ns);

  // The holder's work completes and is charged; at the slice end the waiter (least vtime) wins.
  a->on_complete(f.now(), 2, 15 * kMs);
  f.clock.set(d.retry_at_ns);
  const std::uint64_t handovers = f.table->handovers.load();
  d = b->before_launch(f.now());
  REQUIRE(d.go());
  CHECK(f.holder().group == 1);
  CHECK(f.table->handovers.load() == handovers + 1);
  // The old holder now waits, and publishes its demand.
  d = a->before_launch(f.now());
  REQUIRE_FALSE(d.go());
  CHECK(d.reason == WaitReason::kOtherHolder);
}

TEST_CASE("arbiter: the holder hands over at its own launch boundary when the slice is over",
          "[timeslice][arbiter]") {
  Fixture f;
  auto a = f.joined(0, 0, 50);
  auto b = f.joined(1, 1, 50);
  const Nanos start = f.now();
  // a launches every ms (each completing 1 ms later); b polls every ms.
  while (f.now() < start + f.t.slice_ns) {
    REQUIRE(a->before_launch(f.now()).go());
    a->on_launch(f.now());
    f.clock.advance(500 * kUs);
    REQUIRE_FALSE(b->before_launch(f.now()).go());
    f.clock.advance(500 * kUs);
    a->on_complete(f.now(), 1, 1 * kMs);
  }
  // First launch past the slice end, with b waiting: a stops, the pick gives b the device.
  const Decision d = a->before_launch(f.now());
  CHECK_FALSE(d.go());
  CHECK(d.reason == WaitReason::kOtherHolder);
  CHECK(f.holder().group == 1);
  CHECK(b->before_launch(f.now()).go());
}

TEST_CASE("arbiter: an idle holder is passed over after the idle grace", "[timeslice][arbiter]") {
  Fixture f;
  auto a = f.joined(0, 0, 50);
  auto b = f.joined(1, 1, 50);
  REQUIRE(a->before_launch(f.now()).go());  // holds, launches nothing more
  f.clock.advance(f.t.idle_grace_ns / 2);
  REQUIRE_FALSE(b->before_launch(f.now()).go());
  f.clock.advance(f.t.idle_grace_ns);
  CHECK(b->before_launch(f.now()).go());
  CHECK(f.holder().group == 1);
}

TEST_CASE("arbiter: work in flight keeps the holder busy while its watcher ticks",
          "[timeslice][arbiter]") {
  Fixture f;
  auto a = f.joined(0, 0, 50);
  auto b = f.joined(1, 1, 50);
  REQUIRE(b->before_launch(f.now()).go());  // b holds first, so a must wait...
  f.clock.advance(f.t.idle_grace_ns + 1);
  REQUIRE(a->before_launch(f.now()).go());  // ...until b is idle; now a holds
  a->on_launch(f.now());
  // a's kernel runs 10 ms; a's watcher ticks every ms; b waits the whole time (slice not over).
  for (int i = 0; i < 10; ++i) {
    f.clock.advance(1 * kMs);
    CHECK(a->tick(f.now()) == f.now() + f.t.active_tick_ns);
    CHECK_FALSE(b->before_launch(f.now()).go());
  }
  // Completed: the busy lease is pulled in to the idle grace, after which b takes over.
  a->on_complete(f.now(), 1, 10 * kMs);
  CHECK(a->tick(f.now()) == f.now() + f.t.idle_tick_ns);
  f.clock.advance(f.t.idle_grace_ns + 1);
  CHECK(b->before_launch(f.now()).go());
}

TEST_CASE("arbiter: a killed holder is passed over when its lease runs out",
          "[timeslice][arbiter]") {
  Fixture f;
  auto a = f.joined(0, 0, 50);
  auto b = f.joined(1, 1, 50);
  REQUIRE(a->before_launch(f.now()).go());
  a->on_launch(f.now());
  (void)a->tick(f.now());  // in flight: lease = now + inflight_lease
  const Nanos died = f.now();
  // a is SIGKILLed: no more ticks. With a long slice, only the lease frees the device.
  Nanos got = 0;
  for (Nanos t = died; t < died + 200 * kMs; t += 100 * kUs) {
    f.clock.set(t);
    if (b->before_launch(t).go()) {
      got = t;
      break;
    }
  }
  REQUIRE(got > 0);
  CHECK(got - died <= std::min(f.t.inflight_lease_ns, f.t.slice_ns) + 200 * kUs);
}

TEST_CASE("arbiter: high priority preempts at its first launch and low keeps little in flight",
          "[timeslice][arbiter]") {
  Fixture f;
  f.t.preempt_drain_wait_ns = f.t.max_drain_wait_ns;  // the waiting variant (default: 0)
  auto low = f.make(0);
  auto high = f.make(1);
  REQUIRE(low->join(f.now(), 0, 50, Mode::kShare, Priority::kLow));
  REQUIRE(low->before_launch(f.now()).go());
  low->on_launch(f.now());
  // Alone, low is not bounded.
  for (int i = 0; i < 20; ++i) {
    REQUIRE(low->before_launch(f.now()).go());
    low->on_launch(f.now());
  }
  low->on_complete(f.now(), 21, 21 * 200 * kUs);  // 200 us per launch

  // A high-priority process joins: from now on low keeps at most low_inflight_ns in flight.
  REQUIRE(high->join(f.now(), 1, 50, Mode::kShare, Priority::kHigh));
  int admitted = 0;
  while (low->before_launch(f.now()).go()) {
    low->on_launch(f.now());
    ++admitted;
    REQUIRE(admitted < 100);
  }
  CHECK(admitted == std::max<Nanos>(1, f.t.low_inflight_ns / (200 * kUs)));  // at least one
  const Decision d = low->before_launch(f.now());
  CHECK(d.reason == WaitReason::kInflightBound);
  CHECK(d.retry_at_ns == f.now() + f.t.inflight_poll_ns);

  // High launches inside low's slice: it takes the device at once, and (in this variant) lets
  // low's queued work drain before it submits; low, waited for, reports at the drain's pace.
  f.clock.advance(100 * kUs);
  const Decision first = high->before_launch(f.now());
  CHECK(f.holder().group == 1);
  REQUIRE_FALSE(first.go());
  CHECK(first.reason == WaitReason::kDrain);
  CHECK(first.retry_at_ns == f.now() + f.t.drain_poll_ns);
  const Decision draining = low->before_launch(f.now());
  CHECK(draining.reason == WaitReason::kDrain);
  CHECK(low->tick(f.now()) == f.now() + f.t.drain_tick_ns);
  low->on_complete(f.now(), admitted, admitted * 200 * kUs);
  REQUIRE(high->before_launch(f.now()).go());
  const Decision after = low->before_launch(f.now());
  CHECK_FALSE(after.go());
  CHECK(after.reason == WaitReason::kOtherHolder);
}

TEST_CASE("arbiter: by default a preempting high-priority process launches at once",
          "[timeslice][arbiter][exclusive]") {
  Fixture f;
  REQUIRE(f.t.preempt_drain_wait_ns == 0);
  auto low = f.joined(0, 0, 50, Mode::kShare, Priority::kLow);
  auto high = f.joined(1, 1, 50, Mode::kShare, Priority::kHigh);
  REQUIRE(low->before_launch(f.now()).go());
  low->on_launch(f.now());
  REQUIRE(f.table->groups[0].inflight_until_ns.load() > f.now());
  f.clock.advance(100 * kUs);
  // Low's sliver is still queued: high takes the device and goes without a drain wait (its launch
  // queues behind the sliver on the GPU), and low is not asked to report at the drain's pace.
  CHECK(high->before_launch(f.now()).go());
  CHECK(f.holder().group == 1);
  CHECK(low->tick(f.now()) == f.now() + f.t.active_tick_ns);
  CHECK(low->before_launch(f.now()).reason == WaitReason::kOtherHolder);
  // (Between equal priorities the hand-over still drains: "a new holder waits until ...".)
}

TEST_CASE("arbiter: cap mode waits for its budget even alone", "[timeslice][arbiter]") {
  Fixture f;
  auto a = f.joined(0, 0, 30, Mode::kCap);
  Decision d = a->before_launch(f.now());
  REQUIRE(d.go());
  CHECK(d.track);  // cap mode always tracks: its budget is charged from completions
  a->on_launch(f.now());
  a->on_complete(f.now() + 30 * kMs, 1, 30 * kMs);  // 30 ms of GPU costs 100 ms of wall at 30%
  f.clock.advance(30 * kMs);
  d = a->before_launch(f.now());
  REQUIRE_FALSE(d.go());
  CHECK(d.reason == WaitReason::kCapBudget);
  CHECK(d.retry_at_ns <= f.now() + f.t.cap_poll_ns);
  // Back in budget once tat - ahead has passed: charged at start + 30 ms with an empty bank
  // (tat = now - burst), so tat = start + 30 ms - burst + 100 ms.
  const Nanos tat = 1 * kS + 30 * kMs - f.t.cap_burst_ns + 100 * kMs;
  f.clock.set(tat - f.t.cap_ahead_ns - 1);
  CHECK_FALSE(a->before_launch(f.now()).go());
  f.clock.set(tat - f.t.cap_ahead_ns);
  CHECK(a->before_launch(f.now()).go());
}

TEST_CASE("arbiter: completions beyond launches and huge reports are tolerated",
          "[timeslice][arbiter]") {
  Fixture f;
  auto a = f.joined(0, 0, 50);
  a->on_launch(f.now(), 2);
  a->on_complete(f.now(), 5, 1000);
  CHECK(a->inflight_launches() == 0);
  a->on_complete(f.now(), 1, UINT64_MAX);
  a->on_complete(f.now(), 0, 0);
  CHECK(a->estimated_launch_ns() > 0);
  CHECK(a->before_launch(f.now()).go());
}

TEST_CASE("arbiter: corrupt holder words do not block", "[timeslice][arbiter]") {
  Fixture f;
  auto a = f.joined(0, 0, 50);
  SECTION("unknown group code") { f.table->holder.store(0x1234); }
  SECTION("a configured group with a slice starting far in the future") {
    MemberConfig c;
    c.present = true;
    c.group = 9;
    c.share_percent = 50;
    f.table->groups[9].config.store(encode_config(c));
    f.table->groups[9].busy_until_ns.store(f.now() + 1 * kS);  // live-looking lease
    f.table->holder.store(
        encode_holder(9, static_cast<std::uint64_t>(f.now() / 1000) + 1'000'000'000));
  }
  SECTION("a holder whose group has no configuration") {
    f.table->holder.store(encode_holder(17, static_cast<std::uint64_t>(f.now() / 1000)));
  }
  CHECK(a->before_launch(f.now()).go());
  CHECK(f.holder().group == 0);
}

TEST_CASE("arbiter: a returning group catches up and banks no credit", "[timeslice][arbiter]") {
  Fixture f;
  auto a = f.joined(0, 0, 50);
  auto b = f.joined(1, 1, 50);
  // a competes (tracked) against a waiting c for 10 s while b is idle.
  auto c = f.joined(2, 2, 50);
  f.table->groups[0].vtime.store(10 * kS);
  f.table->groups[2].vtime.store(10 * kS);
  f.table->groups[0].want_until_ns.store(f.now() + 5 * kMs);
  f.table->groups[2].want_until_ns.store(f.now() + 5 * kMs);
  // b returns with vtime 0: it is lifted to the least vtime of those competing.
  (void)b->before_launch(f.now());
  CHECK(f.table->groups[1].vtime.load() == static_cast<std::uint64_t>(10 * kS));
}

}  // namespace
}  // namespace xpu::timeslice::test

namespace xpu::timeslice::test {
namespace {

TEST_CASE("arbiter: lost completion reports cannot block a process forever",
          "[timeslice][arbiter]") {
  Fixture f;
  auto low = f.joined(0, 0, 50, Mode::kShare, Priority::kLow);
  auto high = f.joined(1, 1, 50, Mode::kShare, Priority::kHigh);
  // Bounded below a joined high-priority process; its completions never come.
  while (low->before_launch(f.now()).go()) low->on_launch(f.now());
  CHECK(low->before_launch(f.now()).reason == WaitReason::kInflightBound);
  for (int i = 0; i < 12; ++i) {
    f.clock.advance(1 * kS);
    (void)low->tick(f.now());
    (void)high->tick(f.now());
  }
  CHECK(low->inflight_launches() == 0);
  CHECK(low->before_launch(f.now()).go());
}

}  // namespace
}  // namespace xpu::timeslice::test

// ---- exclusive hand-over ----

namespace xpu::timeslice::test {
namespace {

// a holds with two tracked launches queued while b waits; returns when a's slice is over.
void hold_with_queued_work(Fixture& f, Arbiter& a, Arbiter& b) {
  REQUIRE(a.join(f.now(), 0, 50, Mode::kShare, Priority::kNormal));
  REQUIRE(b.join(f.now(), 1, 50, Mode::kShare, Priority::kNormal));
  REQUIRE(a.before_launch(f.now()).go());
  const Nanos slice_start = f.now();
  REQUIRE_FALSE(b.before_launch(f.now()).go());  // b waits: a now sees contention
  // a has used the GPU (so b is next at the slice end) and has two launches queued.
  REQUIRE(a.before_launch(f.now()).go());
  a.on_launch(f.now());
  a.on_complete(f.now(), 1, 5 * kMs);
  for (int i = 0; i < 2; ++i) {
    const Decision d = a.before_launch(f.now());
    REQUIRE(d.go());
    REQUIRE(d.track);
    a.on_launch(f.now());
  }
  CHECK(f.table->groups[0].inflight_until_ns.load() > f.now());
  // The work runs long; a's watcher ticks meanwhile, renewing its leases.
  f.clock.set(slice_start + f.t.slice_ns / 2);
  (void)a.tick(f.now());
  f.clock.set(slice_start + f.t.slice_ns);
}

TEST_CASE("arbiter: a new holder waits until the previous holder's queued work has drained",
          "[timeslice][arbiter][exclusive]") {
  Fixture f;
  auto a = f.make(0);
  auto b = f.make(1);
  hold_with_queued_work(f, *a, *b);
  // Slice over: b takes the device, and waits for a's drain.
  Decision d = b->before_launch(f.now());
  CHECK(f.holder().group == 1);
  const std::uint64_t word = f.table->holder.load();
  const PreviousHolder prev = decode_previous(f.table->previous_holder.load(), word);
  CHECK(prev.present);
  CHECK(prev.group == 0);
  REQUIRE_FALSE(d.go());
  CHECK(d.reason == WaitReason::kDrain);
  CHECK(d.retry_at_ns == f.now() + f.t.drain_poll_ns);
  // a is waited for: its watcher and its launch thread report at the drain's pace.
  CHECK(a->tick(f.now()) == f.now() + f.t.drain_tick_ns);
  d = a->before_launch(f.now());
  CHECK(d.reason == WaitReason::kDrain);
  CHECK(d.retry_at_ns == f.now() + f.t.drain_poll_ns);
  f.clock.advance(1 * kMs);
  CHECK(b->before_launch(f.now()).reason == WaitReason::kDrain);
  // a's last completion pulls its in-flight lease in: b starts at once, and holds on to it.
  a->on_complete(f.now(), 2, 2 * kMs);
  CHECK(f.table->groups[0].inflight_until_ns.load() == f.now());
  CHECK(b->before_launch(f.now()).go());
  CHECK(f.table->holder.load() == word);
  CHECK(a->tick(f.now()) == f.now() + f.t.active_tick_ns);  // waits for the device again
  CHECK(a->before_launch(f.now()).reason == WaitReason::kOtherHolder);
}

TEST_CASE("arbiter: a drain that never ends is waited for max_drain_wait_ns at most",
          "[timeslice][arbiter][exclusive]") {
  Fixture f;
  auto a = f.make(0);
  auto b = f.make(1);
  hold_with_queued_work(f, *a, *b);
  // a dies (or loses its completions): its lease would live for inflight_lease_ns.
  const Nanos slice_start = f.now();
  Decision d = b->before_launch(f.now());
  int polls = 0;
  while (!d.go()) {
    CHECK(d.reason == WaitReason::kDrain);
    CHECK(d.retry_at_ns <= slice_start + f.t.max_drain_wait_ns);
    f.clock.set(d.retry_at_ns);
    d = b->before_launch(f.now());
    REQUIRE(++polls < 1000);
  }
  CHECK(f.now() == slice_start + f.t.max_drain_wait_ns);
  CHECK(f.holder().group == 1);
  XPU_TS_REPORT("dead predecessor: new holder started after %.3f ms and %d polls",
                (f.now() - slice_start) / 1e6, polls);
}

TEST_CASE("arbiter: with max_drain_wait_ns = 0 the new holder starts at once",
          "[timeslice][arbiter][exclusive]") {
  Fixture f;
  f.t.max_drain_wait_ns = 0;
  auto a = f.make(0);
  auto b = f.make(1);
  hold_with_queued_work(f, *a, *b);
  CHECK(b->before_launch(f.now()).go());
  CHECK(a->tick(f.now()) == f.now() + f.t.active_tick_ns);
  CHECK(a->before_launch(f.now()).reason == WaitReason::kOtherHolder);
}

TEST_CASE("arbiter: no drain wait for the own group, and none once seen clear",
          "[timeslice][arbiter][exclusive]") {
  Fixture f;
  auto m1 = f.joined(0, 0, 50);
  auto m2 = f.joined(1, 0, 50);
  REQUIRE(m1->before_launch(f.now()).go());
  m1->on_launch(f.now());
  // The record names our own group (it let go to nobody and took the device back): no wait.
  const std::uint64_t word = f.table->holder.load();
  f.table->previous_holder.store(encode_previous(word, true, 0));
  CHECK(f.table->groups[0].inflight_until_ns.load() > f.now());
  CHECK(m2->before_launch(f.now()).go());
  CHECK(m1->before_launch(f.now()).go());

  // Another group whose lease has expired: clear, and cached for this holder word, so that a
  // lease that (wrongly) comes alive again later in the slice is not even looked at.
  MemberConfig other;
  other.present = true;
  other.group = 7;
  other.share_percent = 50;
  f.table->groups[7].config.store(encode_config(other));
  f.table->previous_holder.store(encode_previous(word, true, 7));
  auto m3 = f.joined(2, 0, 50);
  CHECK(m3->before_launch(f.now()).go());
  f.table->groups[7].inflight_until_ns.store(f.now() + 10 * kMs);
  CHECK(m3->before_launch(f.now()).go());
  // A member that never looked before does see it (the record is per holder word).
  auto m4 = f.joined(3, 0, 50);
  CHECK(m4->before_launch(f.now()).reason == WaitReason::kDrain);
  // A stale record (another holder word) means nothing to wait for.
  f.table->previous_holder.store(encode_previous(word + (1U << 16), true, 7));
  CHECK(m4->before_launch(f.now()).go());
}

TEST_CASE("arbiter: a capped holder out of budget is drained before the next holder starts",
          "[timeslice][arbiter][exclusive]") {
  Fixture f;
  auto a = f.joined(0, 0, 30, Mode::kCap);
  auto b = f.joined(1, 1, 50);
  REQUIRE(a->before_launch(f.now()).go());
  a->on_launch(f.now());
  REQUIRE_FALSE(b->before_launch(f.now()).go());
  REQUIRE(a->before_launch(f.now()).go());
  a->on_launch(f.now());
  // The first launch completes after 30 ms of GPU: the budget is spent, one launch still queued.
  for (int i = 0; i < 30; ++i) {
    f.clock.advance(1 * kMs);
    (void)a->tick(f.now());
    (void)b->before_launch(f.now());  // b keeps its demand up
  }
  a->on_complete(f.now(), 1, 30 * kMs);
  Decision d = a->before_launch(f.now());
  CHECK(d.reason == WaitReason::kCapBudget);
  CHECK(f.holder().group == 1);                         // handed over
  CHECK(d.retry_at_ns == f.now() + f.t.drain_poll_ns);  // and reports at the drain's pace
  d = b->before_launch(f.now());
  CHECK(d.reason == WaitReason::kDrain);
  a->on_complete(f.now(), 1, 1 * kMs);
  CHECK(b->before_launch(f.now()).go());
}

TEST_CASE("arbiter: a lone holder's fast path is bounded and ends when the device changes",
          "[timeslice][arbiter][fast]") {
  Fixture f;
  auto a = f.joined(0, 0, 30);
  CHECK_FALSE(a->fast_go());  // never armed yet
  // Launch every 10 us. The first launch takes the device; the next arms the fast path without a
  // rate yet; the one after allows the launches that fit in half the idle grace at that rate.
  for (int i = 0; i < 3; ++i) {
    REQUIRE(a->before_launch(f.now()).go());
    f.clock.advance(10'000);
  }
  const auto budget = f.t.idle_grace_ns / 2 / 10'000;
  REQUIRE(budget > 2);
  int fast = 0;
  while (a->fast_go()) ++fast;
  CHECK(fast == budget);
  // Re-armed, then another process announces demand: the very next launch takes the full path.
  REQUIRE(a->before_launch(f.now()).go());
  auto b = f.joined(1, 1, 70);
  const Decision db = b->before_launch(f.now());  // b must wait: it publishes its demand
  CHECK_FALSE(db.go());
  CHECK_FALSE(a->fast_go());
  // The holder word changing also ends it, and cap mode never uses it.
  auto c = f.joined(2, 2, 30, Mode::kCap);
  (void)c->before_launch(f.now());
  CHECK_FALSE(c->fast_go());
}

// lo (low) and hi (high) joined; hi's first launch, a probe, measured `probe_gpu_ns` and is
// reported `wall_ns` later.
void probe_once(Fixture& f, Arbiter& hi, Nanos probe_gpu_ns, Nanos wall_ns = 0) {
  const Decision d = hi.before_launch(f.now());
  REQUIRE(d.go());
  REQUIRE(d.track);
  hi.on_launch(f.now());
  f.clock.advance(wall_ns);
  hi.on_complete(f.now(), 1, static_cast<std::uint64_t>(probe_gpu_ns));
}

TEST_CASE(
    "arbiter: the highest class beside lower ones probes once per period and holds its "
    "estimated queue",
    "[timeslice][arbiter][priority]") {
  Fixture f;
  auto lo = f.joined(1, 1, 100, Mode::kShare, Priority::kLow);
  auto hi = f.joined(0, 0, 100, Mode::kShare, Priority::kHigh);
  // First launch: a probe (tracked), which claims no busy lease of its own. It measures 1 ms per
  // launch.
  probe_once(f, *hi, 1'000'000, 1'000'000);
  // Ten untracked launches within the probe period: a virtual queue of about 10 ms.
  int tracked = 0;
  Decision d;
  for (int i = 0; i < 10; ++i) {
    d = hi->before_launch(f.now());
    REQUIRE(d.go());
    tracked += d.track ? 1 : 0;
  }
  CHECK(tracked == 0);
  // The estimate moved a quarter of the way from the 200 us default to the measured 1 ms.
  const Nanos per_launch = hi->estimated_launch_ns();
  CHECK(per_launch == 400'000);
  const Nanos busy = f.table->groups[0].busy_until_ns.load();
  CHECK(busy >= f.now() + 10 * per_launch);
  CHECK(busy <= f.now() + 10 * per_launch + f.t.idle_grace_ns);
  // The low process cannot take the device while that estimated work runs ...
  CHECK_FALSE(lo->before_launch(f.now()).go());
  // ... and may once it has run out (plus the grace).
  f.clock.set(busy + 1);
  d = lo->before_launch(f.now());
  CHECK(d.go());
  // After the probe period, the next high launch is a probe again.
  f.clock.advance(f.t.probe_period_ns);
  d = hi->before_launch(f.now());
  REQUIRE(d.go());
  CHECK(d.track);
}

TEST_CASE("arbiter: the highest class's queue estimate is capped and re-anchored by each probe",
          "[timeslice][arbiter][priority]") {
  Fixture f;
  auto lo = f.joined(1, 1, 100, Mode::kShare, Priority::kLow);
  auto hi = f.joined(0, 0, 100, Mode::kShare, Priority::kHigh);
  // A probe that waited out another context's time-slice: 50 ms for one launch. The estimate
  // jumps to ~12.6 ms per launch, and 100 launches would "queue" over a second of work ...
  probe_once(f, *hi, 50'000'000);
  for (int i = 0; i < 100; ++i) REQUIRE(hi->before_launch(f.now()).go());
  // ... but the lease reaches no further than the in-flight lease (plus the grace).
  const Nanos busy = f.table->groups[0].busy_until_ns.load();
  CHECK(busy == f.now() + f.t.inflight_lease_ns + f.t.idle_grace_ns);
  CHECK_FALSE(lo->before_launch(f.now()).go());
  f.clock.set(busy + 1);
  CHECK(lo->before_launch(f.now()).go());

  // A plausible estimate (400 us per launch), 30 launches: a 12 ms queue holds lo off.
  Fixture g;
  auto lo2 = g.joined(1, 1, 100, Mode::kShare, Priority::kLow);
  auto hi2 = g.joined(0, 0, 100, Mode::kShare, Priority::kHigh);
  probe_once(g, *hi2, 1'000'000);
  REQUIRE(hi2->estimated_launch_ns() == 400'000);
  for (int i = 0; i < 30; ++i) REQUIRE(hi2->before_launch(g.now()).go());
  // (The lease is rewritten once it lags by a quarter of its length: at least 3/4 of 12 ms.)
  CHECK(g.table->groups[0].busy_until_ns.load() >= g.now() + 30 * 400'000 * 3 / 4);
  CHECK_FALSE(lo2->before_launch(g.now()).go());
  // The next probe (after the probe period) completes at once: the queue had really drained, so
  // the lease is pulled in to the grace, and lo goes right after it instead of ~7 ms later.
  g.clock.advance(g.t.probe_period_ns);
  const Decision d = hi2->before_launch(g.now());
  REQUIRE(d.track);
  hi2->on_launch(g.now());
  g.clock.advance(20'000);
  hi2->on_complete(g.now(), 1, 20'000);
  CHECK(g.table->groups[0].busy_until_ns.load() == g.now() + g.t.idle_grace_ns);
  CHECK_FALSE(lo2->before_launch(g.now()).go());
  g.clock.advance(g.t.idle_grace_ns + 1);
  CHECK(lo2->before_launch(g.now()).go());
}

TEST_CASE("arbiter: the highest class beside lower ones takes the fast path between decisions",
          "[timeslice][arbiter][priority][fast]") {
  Fixture f;
  auto lo = f.joined(1, 1, 100, Mode::kShare, Priority::kLow);
  auto hi = f.joined(0, 0, 100, Mode::kShare, Priority::kHigh);
  probe_once(f, *hi, 1'000'000);  // 400 us per launch from now on
  const Nanos per_launch = hi->estimated_launch_ns();
  // Launch every 10 us: the second untracked decision arms the fast path at that rate.
  for (int i = 0; i < 2; ++i) {
    const Decision d = hi->before_launch(f.now());
    REQUIRE(d.go());
    CHECK_FALSE(d.track);
    f.clock.advance(10'000);
  }
  const auto budget = f.t.idle_grace_ns / 2 / 10'000;
  int fast = 0;
  for (; hi->fast_go(); ++fast) f.clock.advance(10'000);
  CHECK(fast == budget);
  // The launches the fast path let through join the virtual queue at the next decision: 3 + 25
  // launches of 400 us from the first one, within the in-flight lease.
  const Nanos before = f.table->groups[0].busy_until_ns.load();
  REQUIRE(hi->before_launch(f.now()).go());
  const Nanos after = f.table->groups[0].busy_until_ns.load();
  CHECK(after - before == (budget + 1) * per_launch);
  // A lower process's demand ends the fast path at once.
  REQUIRE(hi->before_launch(f.now()).go());  // re-arms
  CHECK_FALSE(lo->before_launch(f.now()).go());
  CHECK_FALSE(hi->fast_go());
}

}  // namespace
}  // namespace xpu::timeslice::test
