// The Arbiter API step by step on a fake clock: the exact decisions the adapter sees.
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
  auto a = f.make(0);
  REQUIRE(a->join(f.now(), 0, 30, Mode::kShare, Priority::kNormal));
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
  auto a = f.make(0);
  auto b = f.make(1);
  REQUIRE(a->join(f.now(), 0, 50, Mode::kShare, Priority::kNormal));
  REQUIRE(b->join(f.now(), 1, 50, Mode::kShare, Priority::kNormal));
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
  auto a = f.make(0);
  auto b = f.make(1);
  REQUIRE(a->join(f.now(), 0, 50, Mode::kShare, Priority::kNormal));
  REQUIRE(b->join(f.now(), 1, 50, Mode::kShare, Priority::kNormal));
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
  auto a = f.make(0);
  auto b = f.make(1);
  REQUIRE(a->join(f.now(), 0, 50, Mode::kShare, Priority::kNormal));
  REQUIRE(b->join(f.now(), 1, 50, Mode::kShare, Priority::kNormal));
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
  auto a = f.make(0);
  auto b = f.make(1);
  REQUIRE(a->join(f.now(), 0, 50, Mode::kShare, Priority::kNormal));
  REQUIRE(b->join(f.now(), 1, 50, Mode::kShare, Priority::kNormal));
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
  auto a = f.make(0);
  auto b = f.make(1);
  REQUIRE(a->join(f.now(), 0, 50, Mode::kShare, Priority::kNormal));
  REQUIRE(b->join(f.now(), 1, 50, Mode::kShare, Priority::kNormal));
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

TEST_CASE("arbiter: high priority preempts at its first launch; low keeps little in flight",
          "[timeslice][arbiter]") {
  Fixture f;
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
  CHECK(admitted == f.t.low_inflight_ns / (200 * kUs));
  const Decision d = low->before_launch(f.now());
  CHECK(d.reason == WaitReason::kInflightBound);
  CHECK(d.retry_at_ns == f.now() + f.t.inflight_poll_ns);

  // High launches inside low's slice: go at once; low's next launch waits.
  f.clock.advance(100 * kUs);
  REQUIRE(high->before_launch(f.now()).go());
  CHECK(f.holder().group == 1);
  low->on_complete(f.now(), 2, 400 * kUs);
  const Decision after = low->before_launch(f.now());
  CHECK_FALSE(after.go());
  CHECK(after.reason == WaitReason::kOtherHolder);
}

TEST_CASE("arbiter: cap mode waits for its budget even alone", "[timeslice][arbiter]") {
  Fixture f;
  auto a = f.make(0);
  REQUIRE(a->join(f.now(), 0, 30, Mode::kCap, Priority::kNormal));
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
  auto a = f.make(0);
  REQUIRE(a->join(f.now(), 0, 50, Mode::kShare, Priority::kNormal));
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
  auto a = f.make(0);
  REQUIRE(a->join(f.now(), 0, 50, Mode::kShare, Priority::kNormal));
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
  auto a = f.make(0);
  auto b = f.make(1);
  REQUIRE(a->join(f.now(), 0, 50, Mode::kShare, Priority::kNormal));
  REQUIRE(b->join(f.now(), 1, 50, Mode::kShare, Priority::kNormal));
  // a competes (tracked) against a waiting c for 10 s while b is idle.
  auto c = f.make(2);
  REQUIRE(c->join(f.now(), 2, 50, Mode::kShare, Priority::kNormal));
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
  auto low = f.make(0);
  auto high = f.make(1);
  REQUIRE(low->join(f.now(), 0, 50, Mode::kShare, Priority::kLow));
  REQUIRE(high->join(f.now(), 1, 50, Mode::kShare, Priority::kHigh));
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
