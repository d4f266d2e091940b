// Priorities under the simulator: a high-priority inference process keeps its latency next to a
// low-priority trainer, which still gets the idle gaps.
#include <algorithm>
#include <vector>

#include "sim.hpp"
#include "ts_test_support.hpp"

namespace xpu::timeslice::test {
namespace {

using sim::ProcSpec;
using sim::Simulation;
using sim::WorkKind;

ProcSpec inference(std::uint32_t group, Nanos period, std::uint32_t kernels, Nanos kernel) {
  ProcSpec p;
  p.group = group;
  p.share = 50;
  p.priority = Priority::kHigh;
  p.work.kind = WorkKind::kRequests;
  p.work.period_ns = period;
  p.work.kernels_per_request = kernels;
  p.work.kernel_ns = kernel;
  p.work.cpu_per_launch_ns = 20 * kUs;
  return p;
}

ProcSpec training(std::uint32_t group, Nanos kernel, Priority prio = Priority::kLow) {
  ProcSpec p;
  p.group = group;
  p.share = 50;
  p.priority = prio;
  p.work.kind = WorkKind::kBusy;
  p.work.kernel_ns = kernel;
  p.work.jitter = 0.2;
  p.work.queue_depth = 64;
  return p;
}

Nanos percentile(std::vector<Nanos> v, double q) {
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1));
  return v[i];
}

struct Outcome {
  Nanos p50 = 0;
  Nanos p99 = 0;
  Nanos max_queue_delay = 0;
  double trainer_fraction = 0.0;
  double inference_fraction = 0.0;
};

Outcome run(bool with_trainer, Nanos period, std::uint32_t kernels, Nanos kernel,
            Nanos train_kernel, const Tunables& t = {}) {
  Simulation sim(t);
  const int h = sim.add(inference(0, period, kernels, kernel));
  int l = -1;
  if (with_trainer) l = sim.add(training(1, train_kernel));
  sim.run_window(1 * kS, 10 * kS);
  Outcome o;
  o.p50 = percentile(sim.stats(h).latency, 0.50);
  o.p99 = percentile(sim.stats(h).latency, 0.99);
  o.max_queue_delay =
      *std::max_element(sim.stats(h).queue_delay.begin(), sim.stats(h).queue_delay.end());
  o.inference_fraction = sim.fraction(h);
  if (l >= 0) o.trainer_fraction = sim.fraction(l);
  // High priority never waits for the low one's slice; it only lets the low one's queued work
  // (bounded to low_inflight_ns) drain before it starts (exclusive hand-over).
  CHECK(sim.stats(h).holder_waits == 0);
  return o;
}

TEST_CASE("priority: inference p99 stays within 5% of alone, trainer keeps >= 25%",
          "[timeslice][sim][priority]") {
  struct Case {
    Nanos period;
    std::uint32_t kernels;
    Nanos kernel;
    Nanos train_kernel;
  };
  // 20 req/s of 20 x 1 ms (40% load); 50 req/s of 10 x 1 ms (50% load); 10 req/s of 4 x 5 ms.
  const Case cases[] = {{50 * kMs, 20, 1 * kMs, 300 * kUs},
                        {20 * kMs, 10, 1 * kMs, 200 * kUs},
                        {100 * kMs, 4, 5 * kMs, 400 * kUs}};
  for (const Case& c : cases) {
    const Outcome alone = run(false, c.period, c.kernels, c.kernel, c.train_kernel);
    const Outcome shared = run(true, c.period, c.kernels, c.kernel, c.train_kernel);
    // Solo trainer throughput is the whole GPU; with inference at load x it could get at most 1-x.
    XPU_TS_REPORT(
        "inference %u x %lld us every %lld ms, trainer %lld us kernels: p50 %.3f -> %.3f ms, p99 "
        "%.3f -> %.3f ms (+%.2f%%), max queueing %.3f ms, trainer %.1f%% of solo (inference "
        "%.1f%%)",
        c.kernels, static_cast<long long>(c.kernel / kUs), static_cast<long long>(c.period / kMs),
        static_cast<long long>(c.train_kernel / kUs), alone.p50 / 1e6, shared.p50 / 1e6,
        alone.p99 / 1e6, shared.p99 / 1e6,
        100.0 * static_cast<double>(shared.p99 - alone.p99) / static_cast<double>(alone.p99),
        shared.max_queue_delay / 1e6, 100.0 * shared.trainer_fraction,
        100.0 * shared.inference_fraction);
    CHECK(static_cast<double>(shared.p99) <= 1.05 * static_cast<double>(alone.p99));
    CHECK(shared.trainer_fraction >= 0.25);
  }
}

TEST_CASE("priority: the wait of a request is bounded by the low-priority in-flight bound",
          "[timeslice][sim][priority]") {
  // Queueing delay of a request (arrival -> its first kernel runs) comes only from low-priority
  // work already on the GPU: at most low_inflight_ns of estimated work, and at least one launch,
  // plus up to one drain poll until the end of that drain is seen.
  for (const Nanos train_kernel : {100 * kUs, 300 * kUs, 2 * kMs}) {
    const Tunables t;
    const Outcome o = run(true, 30 * kMs, 5, 1 * kMs, train_kernel, t);
    const Nanos longest = train_kernel * 12 / 10;  // jitter 0.2
    const Nanos bound = std::max(t.low_inflight_ns + longest, longest) + t.drain_poll_ns + 20 * kUs;
    XPU_TS_REPORT("trainer %lld us kernels: max request queueing %.3f ms (bound %.3f ms)",
                  static_cast<long long>(train_kernel / kUs), o.max_queue_delay / 1e6, bound / 1e6);
    CHECK(o.max_queue_delay <= bound);
  }
}

TEST_CASE("priority: strict precedence, low gets nothing while high is always busy",
          "[timeslice][sim][priority]") {
  Simulation sim;
  ProcSpec hi = training(0, 1 * kMs, Priority::kHigh);
  const int h = sim.add(hi);
  const int l = sim.add(training(1, 1 * kMs, Priority::kLow));
  sim.run_window(1 * kS, 3 * kS);
  XPU_TS_REPORT("busy high + busy low: %.2f%% / %.2f%%", 100.0 * sim.fraction(h),
                100.0 * sim.fraction(l));
  CHECK(sim.fraction(h) >= 0.97);
  CHECK(sim.fraction(l) <= 0.01);
}

TEST_CASE("priority: equal priorities share by weight, the higher class preempts",
          "[timeslice][sim][priority]") {
  // Two normal processes 30/70 and one low trainer: the low one gets only what is left (nothing).
  Simulation sim;
  ProcSpec a = training(0, 1 * kMs, Priority::kNormal);
  a.share = 30;
  ProcSpec b = training(1, 1 * kMs, Priority::kNormal);
  b.share = 70;
  const int ia = sim.add(a);
  const int ib = sim.add(b);
  const int il = sim.add(training(2, 1 * kMs, Priority::kLow));
  sim.run_window(1 * kS, 5 * kS);
  XPU_TS_REPORT("normal 30 / normal 70 / low: %.2f%% / %.2f%% / %.2f%%", 100.0 * sim.fraction(ia),
                100.0 * sim.fraction(ib), 100.0 * sim.fraction(il));
  CHECK(sim.share(ia) / (sim.share(ia) + sim.share(ib)) == Approx(0.30).margin(0.01));
  CHECK(sim.fraction(il) <= 0.01);
}

}  // namespace
}  // namespace xpu::timeslice::test
