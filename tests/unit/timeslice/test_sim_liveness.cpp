// SIGKILL at any instant: a dead holder or waiter blocks nobody for long, and its slot is
// reclaimed.
#include <algorithm>
#include <vector>

#include "sim.hpp"
#include "ts_test_support.hpp"

namespace xpu::timeslice::test {
namespace {

using sim::ProcSpec;
using sim::Simulation;
using sim::WorkKind;

ProcSpec busy(std::uint32_t group, std::uint32_t share, Priority prio = Priority::kNormal) {
  return sim::busy_process(group, share, 1 * kMs, 0.5, Mode::kShare, prio);
}

// Longest stretch in [from, to) during which `proc` launched nothing.
Nanos longest_gap(const Simulation& sim, int proc, Nanos from, Nanos to) {
  Nanos last = from;
  Nanos worst = 0;
  for (const Nanos t : sim.stats(proc).go_times) {
    if (t < from) continue;
    if (t >= to) break;
    worst = std::max(worst, t - last);
    last = t;
  }
  return std::max(worst, to - last);
}

constexpr Nanos kTarget = 100 * kMs;

TEST_CASE("liveness: a holder killed at any instant is passed over within the target",
          "[timeslice][sim][liveness]") {
  Nanos worst = 0;
  int killed_while_holding = 0;
  for (int i = 0; i < 80; ++i) {
    Simulation sim({}, static_cast<std::uint64_t>(i) + 1);
    sim.record_go_times(true);
    const int a = sim.add(busy(0, 50));
    const int b = sim.add(busy(1, 50));
    const Nanos kill = sim.start() + 500 * kMs + i * 1'370 * kUs;  // spread over ~5 slices
    sim.run_until(kill - 1);
    const HolderWord h = decode_holder(sim.table().holder.load());
    if (h.present && h.group == 0) ++killed_while_holding;
    sim.kill_at(a, kill);
    const Nanos end = kill + 1500 * kMs;
    sim.run_until(end);
    // b's gaps before the kill are slices of a (<= 20 ms + drain); after it, a must not block b.
    const Nanos gap = longest_gap(sim, b, kill, end);
    worst = std::max(worst, gap);
    CHECK(gap <= kTarget);
    // The reaper freed the dead slot within the 1 s limit, and b runs alone at full speed.
    CHECK_FALSE(decode_config(sim.table().slots[a].config.load()).present);
  }
  XPU_TS_REPORT(
      "dead holder: killed while holding %d of 80 times; survivor's longest stall %.1f ms",
      killed_while_holding, worst / 1e6);
  CHECK(killed_while_holding >= 20);
}

TEST_CASE("liveness: a waiter killed at any instant (even just picked) blocks nobody",
          "[timeslice][sim][liveness]") {
  Nanos worst = 0;
  for (int i = 0; i < 80; ++i) {
    Simulation sim({}, static_cast<std::uint64_t>(i) + 100);
    sim.record_go_times(true);
    sim.add(busy(0, 34));
    const int victim = sim.add(busy(1, 33));
    const int c = sim.add(busy(2, 33));
    const Nanos kill = sim.start() + 500 * kMs + i * 1'110 * kUs;
    sim.kill_at(victim, kill);
    const Nanos end = kill + 1 * kS;
    sim.run_until(end);
    // With two survivors at 34/33, c waits at most about one slice of the other at a time.
    const Nanos gap = longest_gap(sim, c, kill, end);
    worst = std::max(worst, gap);
    CHECK(gap <= kTarget);
  }
  XPU_TS_REPORT("dead waiter: survivor's longest stall %.1f ms", worst / 1e6);
}

TEST_CASE("liveness: after the holder dies the survivor gets >= 97% of the GPU",
          "[timeslice][sim][liveness]") {
  Simulation sim;
  const int a = sim.add(busy(0, 70, Priority::kHigh));
  const int b = sim.add(busy(1, 30, Priority::kLow));
  sim.kill_at(a, sim.start() + 1 * kS);
  sim.run_window(1200 * kMs, 2 * kS);
  XPU_TS_REPORT("high-priority holder killed: low survivor gets %.2f%%", 100.0 * sim.fraction(b));
  // Its presence lease expires, so the survivor also leaves the low-priority in-flight bound.
  CHECK(sim.fraction(b) >= 0.97);
}

TEST_CASE("liveness: a group member dies, its peer keeps the group's slice",
          "[timeslice][sim][liveness]") {
  Simulation sim;
  const int a1 = sim.add(busy(0, 50));
  const int a2 = sim.add(busy(0, 50));
  const int b = sim.add(busy(1, 50));
  sim.kill_at(a1, sim.start() + 1 * kS);
  sim.run_window(1500 * kMs, 4 * kS);
  XPU_TS_REPORT("group member killed: peer %.2f%%, other group %.2f%%", 100.0 * sim.share(a2),
                100.0 * sim.share(b));
  CHECK(sim.share(a1) == 0.0);
  CHECK(sim.share(a2) == Approx(0.5).margin(0.01));
}

TEST_CASE("liveness: leave() while holding hands the device on at once",
          "[timeslice][sim][liveness]") {
  Simulation sim;
  sim.record_go_times(true);
  ProcSpec leaver = busy(0, 50);
  const int a = sim.add(leaver);
  const int b = sim.add(busy(1, 50));
  // Leave at a moment when a holds the device.
  Nanos t = sim.start() + 300 * kMs;
  for (;; t += 100 * kUs) {
    sim.run_until(t);
    const HolderWord h = decode_holder(sim.table().holder.load());
    if (h.present && h.group == 0) break;
  }
  sim.leave_at(a, t + 1);
  sim.run_until(t + 200 * kMs);
  const auto& go = sim.stats(b).go_times;
  const auto first = std::lower_bound(go.begin(), go.end(), t + 1);
  REQUIRE(first != go.end());
  XPU_TS_REPORT("leave while holding: other group launches %.3f ms later", (*first - t) / 1e6);
  CHECK(*first - t <= sim.arbiter(b).tunables().wait_poll_ns + 10 * kUs);
}

TEST_CASE("liveness: the slot of a dead process is reclaimed only when liveness says dead",
          "[timeslice][sim][liveness]") {
  DeviceSchedule table{};
  bool victim_alive = true;
  struct Ctx {
    bool* victim_alive;
  } ctx{&victim_alive};
  const Liveness liveness(
      [](void* c, std::uint32_t slot) noexcept {
        return slot != 1 || *static_cast<Ctx*>(c)->victim_alive;
      },
      &ctx);
  Arbiter reaper(table, 0, {}, liveness);
  Arbiter victim(table, 1, {}, liveness);
  Nanos now = 1 * kS;
  REQUIRE(reaper.join(now, 0, 50, Mode::kShare, Priority::kNormal));
  REQUIRE(victim.join(now, 1, 50, Mode::kShare, Priority::kNormal));
  // The victim stops ticking but is alive (stopped, or starved of CPU): its slot stays.
  for (int i = 0; i < 40; ++i) reaper.tick(now += 50 * kMs);
  CHECK(decode_config(table.slots[1].config.load()).present);
  victim_alive = false;
  for (int i = 0; i < 5; ++i) reaper.tick(now += 50 * kMs);
  CHECK_FALSE(decode_config(table.slots[1].config.load()).present);
  // Its epoch survives, so a new process joining the slot gets a fresh one.
  const std::uint32_t epoch = decode_config(table.slots[1].config.load()).epoch;
  Arbiter successor(table, 1, {}, liveness);
  REQUIRE(successor.join(now, 3, 20, Mode::kShare, Priority::kNormal));
  CHECK(decode_config(table.slots[1].config.load()).epoch == epoch + 1);
}

}  // namespace
}  // namespace xpu::timeslice::test
