// Share mode under the simulator: proportional shares, efficiency, work conservation.
#include <vector>

#include "sim.hpp"
#include "ts_test_support.hpp"

namespace xpu::timeslice::test {
namespace {

using sim::ProcSpec;
using sim::Simulation;
using sim::WorkKind;

ProcSpec busy(std::uint32_t group, std::uint32_t share, Nanos kernel = 1 * kMs,
              double jitter = 0.5) {
  return sim::busy_process(group, share, kernel, jitter);
}

// Runs all-busy processes with `shares` for `seconds` after a 1 s warm-up; checks each one's part
// of the GPU time is within one point of its configured part, and the GPU efficiency.
void check_shares(const std::vector<std::uint32_t>& shares, Nanos kernel, Nanos seconds) {
  Simulation sim;
  std::uint32_t total = 0;
  for (std::size_t i = 0; i < shares.size(); ++i) {
    // Different kernel lengths per process: the scheduler must charge GPU time, not launches.
    sim.add(busy(static_cast<std::uint32_t>(i), shares[i],
                 kernel * static_cast<Nanos>(i + 1) / 2 + kernel / 2));
    total += shares[i];
  }
  sim.run_window(1 * kS, seconds);
  for (std::size_t i = 0; i < shares.size(); ++i) {
    const double want = static_cast<double>(shares[i]) / total;
    const double got = sim.share(static_cast<int>(i));
    XPU_TS_REPORT("  share %u%%: got %.2f%% (%llu launches, %llu waits)", shares[i], 100.0 * got,
                  static_cast<unsigned long long>(sim.stats(static_cast<int>(i)).launches),
                  static_cast<unsigned long long>(sim.stats(static_cast<int>(i)).waits));
    INFO("process " << i << " configured " << want << " got " << got);
    CHECK(got == Approx(want).margin(0.01));
  }
  XPU_TS_REPORT("  efficiency %.2f%%, handovers %llu", 100.0 * sim.gpu_busy_fraction(),
                static_cast<unsigned long long>(sim.table().handovers.load()));
  CHECK(sim.gpu_busy_fraction() >= 0.97);
}

TEST_CASE("share: 30/70 busy processes get 30/70 of the GPU", "[timeslice][sim][share]") {
  XPU_TS_REPORT("30/70:");
  check_shares({30, 70}, 1 * kMs, 20 * kS);
}

TEST_CASE("share: 10/20/30/40 busy processes get their parts", "[timeslice][sim][share]") {
  XPU_TS_REPORT("10/20/30/40:");
  check_shares({10, 20, 30, 40}, 1 * kMs, 30 * kS);
}

TEST_CASE("share: short kernels (50 us) keep shares and efficiency", "[timeslice][sim][share]") {
  XPU_TS_REPORT("30/70, 50 us kernels:");
  check_shares({30, 70}, 50 * kUs, 10 * kS);
}

TEST_CASE("share: shares are weights when they do not add up to 100", "[timeslice][sim][share]") {
  XPU_TS_REPORT("20/20/40 (weights):");
  check_shares({20, 20, 40}, 1 * kMs, 10 * kS);
}

TEST_CASE("share: a lone busy process gets the whole GPU and records no events",
          "[timeslice][sim][share]") {
  Simulation sim;
  const int a = sim.add(busy(0, 30));
  sim.run_window(1 * kS, 5 * kS);
  XPU_TS_REPORT("lone: %.2f%% of the GPU, %llu of %llu launches tracked", 100.0 * sim.fraction(a),
                static_cast<unsigned long long>(sim.stats(a).tracked),
                static_cast<unsigned long long>(sim.stats(a).launches));
  CHECK(sim.fraction(a) >= 0.97);
  CHECK(sim.stats(a).tracked == 0);
  CHECK(sim.stats(a).waits == 0);
}

TEST_CASE("share: work conservation when the other process is idle", "[timeslice][sim][share]") {
  Simulation sim;
  const int a = sim.add(busy(0, 30));
  ProcSpec idle = busy(1, 70);
  idle.work.kind = WorkKind::kIdle;
  sim.add(idle);
  sim.run_window(1 * kS, 5 * kS);
  XPU_TS_REPORT("30%% busy + 70%% idle: busy one gets %.2f%%", 100.0 * sim.fraction(a));
  CHECK(sim.fraction(a) >= 0.97);
}

TEST_CASE("share: bursty neighbour, busy process fills its gaps", "[timeslice][sim][share]") {
  Simulation sim;
  const int a = sim.add(busy(0, 30));
  ProcSpec bursty = busy(1, 70);
  bursty.work.kind = WorkKind::kBursty;
  bursty.work.on_ns = 200 * kMs;
  bursty.work.off_ns = 300 * kMs;
  const int b = sim.add(bursty);
  sim.run_window(1 * kS, 10 * kS);
  // b has work 40% of the time; while it does it is entitled to 70% of the GPU: 28% overall.
  XPU_TS_REPORT("30%% busy + 70%% bursty(40%% on): %.2f%% / %.2f%%, efficiency %.2f%%",
                100.0 * sim.fraction(a), 100.0 * sim.fraction(b), 100.0 * sim.gpu_busy_fraction());
  CHECK(sim.fraction(b) == Approx(0.28).margin(0.02));
  CHECK(sim.gpu_busy_fraction() >= 0.97);
}

TEST_CASE("share: a process that joins late is not owed the time it was absent",
          "[timeslice][sim][share]") {
  Simulation sim;
  const int a = sim.add(busy(0, 50));
  ProcSpec late = busy(1, 50);
  late.join_at = 3 * kS;
  const int b = sim.add(late);
  sim.run_window(4 * kS, 4 * kS);
  XPU_TS_REPORT("late joiner: %.2f%% / %.2f%%", 100.0 * sim.share(a), 100.0 * sim.share(b));
  CHECK(sim.share(b) == Approx(0.5).margin(0.01));
}

TEST_CASE("share: members of one group share its entitlement", "[timeslice][sim][share]") {
  Simulation sim;
  const int a1 = sim.add(busy(0, 30));
  const int a2 = sim.add(busy(0, 30));
  const int b = sim.add(busy(1, 70));
  sim.run_window(1 * kS, 10 * kS);
  XPU_TS_REPORT("group of two at 30%% + 70%%: %.2f%% + %.2f%% / %.2f%%", 100.0 * sim.share(a1),
                100.0 * sim.share(a2), 100.0 * sim.share(b));
  CHECK(sim.share(a1) + sim.share(a2) == Approx(0.30).margin(0.01));
  CHECK(sim.share(b) == Approx(0.70).margin(0.01));
  CHECK(sim.gpu_busy_fraction() >= 0.97);
}

}  // namespace
}  // namespace xpu::timeslice::test
