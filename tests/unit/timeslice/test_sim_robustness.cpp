// Robustness under the simulator: a corrupted table, many processes, join/leave churn, sloppy
// timers.
#include <random>
#include <vector>

#include "sim.hpp"
#include "ts_test_support.hpp"
#include "xpu/timeslice/status.hpp"

namespace xpu::timeslice::test {
namespace {

using sim::ProcSpec;
using sim::Simulation;
using sim::WorkKind;

ProcSpec busy(std::uint32_t group, std::uint32_t share, Nanos kernel = 1 * kMs) {
  return sim::busy_process(group, share, kernel, 0.5);
}

TEST_CASE("robustness: a table overwritten with random bytes never crashes and converges back",
          "[timeslice][sim][robustness]") {
  for (std::uint64_t seed = 1; seed <= 8; ++seed) {
    Simulation sim({}, seed);
    const int a = sim.add(busy(0, 20));
    const int b = sim.add(busy(1, 30));
    const int c = sim.add(busy(2, 50));
    const Nanos hit = sim.start() + 2 * kS;
    sim.corrupt_at(hit, seed * 7919);
    if (seed % 2 == 0) {
      // Some seeds: corrupted again and again for a second.
      for (int i = 1; i <= 10; ++i)
        sim.corrupt_at(hit + i * 97 * kMs, seed * 31 + static_cast<std::uint64_t>(i));
    }
    const Nanos from = hit + 4 * kS;
    sim.set_window(from, from + 10 * kS);
    sim.run_until(hit + 50 * kMs);
    (void)read_status(sim.table(), sim.now());  // reading garbage is safe too
    sim.run_until(from + 10 * kS);
    XPU_TS_REPORT("corrupted (seed %llu): %.2f%% / %.2f%% / %.2f%%, efficiency %.2f%%",
                  static_cast<unsigned long long>(seed), 100.0 * sim.share(a), 100.0 * sim.share(b),
                  100.0 * sim.share(c), 100.0 * sim.gpu_busy_fraction());
    CHECK(sim.share(a) == Approx(0.20).margin(0.01));
    CHECK(sim.share(b) == Approx(0.30).margin(0.01));
    CHECK(sim.share(c) == Approx(0.50).margin(0.01));
    CHECK(sim.gpu_busy_fraction() >= 0.97);
    // Garbage slots were reclaimed (liveness says nobody lives there).
    const DeviceStatus st = read_status(sim.table(), sim.now());
    CHECK(st.slots.size() == 3);
  }
}

TEST_CASE("robustness: a table that is garbage before anyone joins",
          "[timeslice][sim][robustness]") {
  Simulation sim;
  sim.corrupt_at(sim.start() - 1, 4242);
  const int a = sim.add(busy(0, 30));
  const int b = sim.add(busy(1, 70));
  sim.run_window(4 * kS, 10 * kS);
  XPU_TS_REPORT("garbage from the start: %.2f%% / %.2f%%", 100.0 * sim.share(a),
                100.0 * sim.share(b));
  CHECK(sim.share(a) == Approx(0.30).margin(0.01));
  CHECK(sim.gpu_busy_fraction() >= 0.97);
}

TEST_CASE("robustness: 32 processes in 8 groups on one device", "[timeslice][sim][robustness]") {
  Simulation sim;
  const std::uint32_t shares[8] = {5, 10, 15, 20, 5, 10, 15, 20};
  std::vector<int> members[8];
  for (std::uint32_t i = 0; i < 32; ++i) {
    const std::uint32_t g = i % 8;
    members[g].push_back(sim.add(busy(g, shares[g], (200 + 100 * (i % 5)) * kUs)));
  }
  sim.run_window(1 * kS, 20 * kS);
  for (std::uint32_t g = 0; g < 8; ++g) {
    double got = 0;
    for (const int p : members[g]) got += sim.share(p);
    XPU_TS_REPORT("32 procs: group %u (%u%%) got %.2f%%", g, shares[g], 100.0 * got);
    CHECK(got == Approx(shares[g] / 100.0).margin(0.01));
  }
  XPU_TS_REPORT("32 procs: efficiency %.2f%%", 100.0 * sim.gpu_busy_fraction());
  CHECK(sim.gpu_busy_fraction() >= 0.97);
}

TEST_CASE("robustness: 32 groups of one process each", "[timeslice][sim][robustness]") {
  Simulation sim;
  std::vector<int> procs;
  for (std::uint32_t i = 0; i < 32; ++i) procs.push_back(sim.add(busy(i, 1 + (i % 4))));
  double weights = 0;
  for (std::uint32_t i = 0; i < 32; ++i) weights += 1 + (i % 4);
  sim.run_window(1 * kS, 20 * kS);
  double worst = 0;
  for (std::uint32_t i = 0; i < 32; ++i) {
    const double want = (1 + (i % 4)) / weights;
    worst = std::max(worst, std::abs(sim.share(procs[i]) - want));
    CHECK(sim.share(procs[i]) == Approx(want).margin(0.01));
  }
  XPU_TS_REPORT("32 groups (weights 1-4): worst deviation %.2f points, efficiency %.2f%%",
                100.0 * worst, 100.0 * sim.gpu_busy_fraction());
  CHECK(sim.gpu_busy_fraction() >= 0.97);
}

TEST_CASE("robustness: join/leave churn around two steady processes",
          "[timeslice][sim][robustness]") {
  Simulation sim({}, 77);
  const int a = sim.add(busy(0, 30));
  const int b = sim.add(busy(1, 70));
  std::mt19937_64 rng(99);
  std::uniform_int_distribution<Nanos> on(50 * kMs, 800 * kMs);
  std::uniform_int_distribution<Nanos> off(20 * kMs, 500 * kMs);
  std::vector<int> churners;
  const Nanos end = sim.start() + 12 * kS;
  for (std::uint32_t i = 0; i < 16; ++i) {
    ProcSpec p = busy(2 + i % 6, 10 + 5 * (i % 3), (100 + 150 * (i % 4)) * kUs);
    if (i % 3 == 0) {
      p.work.kind = WorkKind::kBursty;
      p.work.on_ns = 30 * kMs;
      p.work.off_ns = 70 * kMs;
    }
    if (i % 5 == 0) p.mode = Mode::kCap;
    if (i % 7 == 0) p.priority = Priority::kLow;
    Nanos t = off(rng);
    p.join_at = t;
    t += on(rng);
    p.leave_at = t;
    const int idx = sim.add(p);
    churners.push_back(idx);
    // Further rounds in the same slot (a new process in a reused slot).
    while (true) {
      t += off(rng);
      if (t >= 9500 * kMs) break;
      sim.join_at(idx, sim.start() + t);
      t += on(rng);
      sim.leave_at(idx, sim.start() + std::min(t, 10 * kS));
    }
  }
  // Some churners are killed instead of leaving.
  sim.kill_at(churners[3], sim.start() + 3 * kS);
  sim.kill_at(churners[8], sim.start() + 5500 * kMs);
  const Nanos from = sim.start() + 500 * kMs;
  sim.set_window(from, end);
  sim.run_until(end);
  XPU_TS_REPORT(
      "churn: steady 30/70 got %.2f%% / %.2f%% of the GPU (ratio %.3f), efficiency %.2f%%",
      100.0 * sim.fraction(a), 100.0 * sim.fraction(b),
      sim.fraction(a) / (sim.fraction(a) + sim.fraction(b)), 100.0 * sim.gpu_busy_fraction());
  CHECK(sim.gpu_busy_fraction() >= 0.97);
  CHECK(sim.fraction(a) / (sim.fraction(a) + sim.fraction(b)) == Approx(0.30).margin(0.03));
  // The last second had only the steady pair: nothing else is left in the table.
  sim.run_until(end + 1500 * kMs);
  const DeviceStatus st = read_status(sim.table(), sim.now());
  CHECK(st.slots.size() == 2);
}

TEST_CASE("robustness: sloppy timers (sleeps overshoot by 200 us) keep shares and efficiency",
          "[timeslice][sim][robustness]") {
  Simulation sim;
  ProcSpec pa = busy(0, 30, 500 * kUs);
  ProcSpec pb = busy(1, 70, 2 * kMs);
  pa.sleep_overshoot_ns = pb.sleep_overshoot_ns = 200 * kUs;
  const int a = sim.add(pa);
  const int b = sim.add(pb);
  sim.run_window(1 * kS, 10 * kS);
  XPU_TS_REPORT("200 us timer slack: %.2f%% / %.2f%%, efficiency %.2f%%", 100.0 * sim.share(a),
                100.0 * sim.share(b), 100.0 * sim.gpu_busy_fraction());
  CHECK(sim.share(a) == Approx(0.30).margin(0.01));
  CHECK(sim.gpu_busy_fraction() >= 0.97);
}

}  // namespace
}  // namespace xpu::timeslice::test
