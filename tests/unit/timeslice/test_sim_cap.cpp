// Cap mode under the simulator: a ceiling that holds even alone, and leaves the rest to others.
#include "sim.hpp"
#include "ts_test_support.hpp"

namespace xpu::timeslice::test {
namespace {

using sim::ProcSpec;
using sim::Simulation;
using sim::WorkKind;

ProcSpec busy(std::uint32_t group, std::uint32_t share, Mode mode, Nanos kernel,
              double jitter = 0.5) {
  return sim::busy_process(group, share, kernel, jitter, mode);
}

double run_alone(std::uint32_t pct, Nanos kernel) {
  Simulation sim;
  const int a = sim.add(busy(0, pct, Mode::kCap, kernel));
  sim.run_window(1 * kS, 10 * kS);
  XPU_TS_REPORT("cap %u%% alone, %lld us kernels: %.2f%% of the GPU", pct,
                static_cast<long long>(kernel / kUs), 100.0 * sim.fraction(a));
  return sim.fraction(a);
}

TEST_CASE("cap: 30% alone stays at 30% of solo throughput", "[timeslice][sim][cap]") {
  CHECK(run_alone(30, 1 * kMs) == Approx(0.30).margin(0.01));
  CHECK(run_alone(30, 50 * kUs) == Approx(0.30).margin(0.01));
  CHECK(run_alone(30, 8 * kMs) == Approx(0.30).margin(0.01));
}

TEST_CASE("cap: other percentages alone", "[timeslice][sim][cap]") {
  CHECK(run_alone(1, 1 * kMs) == Approx(0.01).margin(0.005));
  CHECK(run_alone(10, 500 * kUs) == Approx(0.10).margin(0.01));
  CHECK(run_alone(75, 2 * kMs) == Approx(0.75).margin(0.01));
  CHECK(run_alone(100, 1 * kMs) >= 0.97);
}

TEST_CASE("cap: capped process next to a busy share process", "[timeslice][sim][cap]") {
  SECTION("cap 30 + share 70: 30/70") {
    Simulation sim;
    const int a = sim.add(busy(0, 30, Mode::kCap, 1 * kMs));
    const int b = sim.add(busy(1, 70, Mode::kShare, 1 * kMs));
    sim.run_window(1 * kS, 10 * kS);
    XPU_TS_REPORT("cap 30 + share 70: %.2f%% / %.2f%%, efficiency %.2f%%", 100.0 * sim.fraction(a),
                  100.0 * sim.fraction(b), 100.0 * sim.gpu_busy_fraction());
    CHECK(sim.fraction(a) == Approx(0.30).margin(0.01));
    CHECK(sim.fraction(b) == Approx(0.70).margin(0.01));
    CHECK(sim.gpu_busy_fraction() >= 0.97);
  }
  SECTION("cap 30 + share 30: the cap holds, the share process takes the rest") {
    Simulation sim;
    const int a = sim.add(busy(0, 30, Mode::kCap, 1 * kMs));
    const int b = sim.add(busy(1, 30, Mode::kShare, 1 * kMs));
    sim.run_window(1 * kS, 10 * kS);
    XPU_TS_REPORT("cap 30 + share 30: %.2f%% / %.2f%%, efficiency %.2f%%", 100.0 * sim.fraction(a),
                  100.0 * sim.fraction(b), 100.0 * sim.gpu_busy_fraction());
    CHECK(sim.fraction(a) == Approx(0.30).margin(0.01));
    CHECK(sim.gpu_busy_fraction() >= 0.97);
  }
  SECTION("two capped processes leave the GPU idle beyond their caps") {
    Simulation sim;
    const int a = sim.add(busy(0, 20, Mode::kCap, 1 * kMs));
    const int b = sim.add(busy(1, 30, Mode::kCap, 2 * kMs));
    sim.run_window(1 * kS, 10 * kS);
    XPU_TS_REPORT("cap 20 + cap 30: %.2f%% / %.2f%%", 100.0 * sim.fraction(a),
                  100.0 * sim.fraction(b));
    CHECK(sim.fraction(a) == Approx(0.20).margin(0.01));
    CHECK(sim.fraction(b) == Approx(0.30).margin(0.01));
  }
}

TEST_CASE("cap: idle time banks at most a short burst", "[timeslice][sim][cap]") {
  // Idle for 2 s, then busy: the first second must not exceed cap + burst.
  Simulation sim;
  ProcSpec p = busy(0, 30, Mode::kCap, 1 * kMs);
  p.join_at = 0;
  p.work.kind = WorkKind::kBursty;
  p.work.on_ns = 1 * kS;
  p.work.off_ns = 2 * kS;
  const int a = sim.add(p);
  // Window = the second "on" phase (starts 3 s after joining).
  sim.run_window(3 * kS, 1 * kS);
  XPU_TS_REPORT("cap 30 after 2 s idle: %.2f%% in the next second", 100.0 * sim.fraction(a));
  const Tunables t;
  const double bound =
      0.30 + static_cast<double>(t.cap_burst_ns + t.cap_ahead_ns) * 0.30 / 1e9 + 0.01;
  CHECK(sim.fraction(a) <= bound);
  CHECK(sim.fraction(a) >= 0.29);
}

}  // namespace
}  // namespace xpu::timeslice::test
