// read_status: what `xpu-run status` shows.
#include "sim.hpp"
#include "ts_test_support.hpp"
#include "xpu/timeslice/status.hpp"

namespace xpu::timeslice::test {
namespace {

TEST_CASE("status: an empty table", "[timeslice][status]") {
  const DeviceSchedule table{};
  const DeviceStatus st = read_status(table, 5 * kS);
  CHECK_FALSE(st.has_holder);
  CHECK(st.slots.empty());
  CHECK(st.handovers == 0);
}

TEST_CASE("status: configuration, holder, waiting and delivered shares", "[timeslice][status]") {
  sim::Simulation sim;
  sim::ProcSpec a;
  a.group = 4;
  a.share = 30;
  a.work.kernel_ns = 1 * kMs;
  sim::ProcSpec b = a;
  b.group = 9;
  b.share = 70;
  b.mode = Mode::kShare;
  b.priority = Priority::kNormal;
  sim::ProcSpec c = a;  // joined, idle, capped, low priority
  c.group = 11;
  c.share = 5;
  c.mode = Mode::kCap;
  c.priority = Priority::kLow;
  c.work.kind = sim::WorkKind::kIdle;
  sim.add(a);
  sim.add(b);
  sim.add(c);
  // Look mid-slice: right at a hand-over the old holder has not polled (announced its wait) yet.
  Nanos at = sim.start() + 6 * kS + 300 * kMs;
  DeviceStatus st;
  for (;; at += 1 * kMs) {
    sim.run_until(at);
    st = read_status(sim.table(), sim.now());
    if (st.slice_age_ns >= 5 * kMs && st.slice_age_ns <= 15 * kMs) break;
  }
  REQUIRE(st.slots.size() == 3);
  CHECK(st.has_holder);
  CHECK(st.handovers > 100);
  CHECK(st.slice_age_ns <= sim.arbiter(0).tunables().slice_ns + 5 * kMs);
  const SlotStatus& sa = st.slots[0];
  const SlotStatus& sb = st.slots[1];
  const SlotStatus& sc = st.slots[2];
  CHECK(sa.group == 4);
  CHECK(sa.share_percent == 30);
  CHECK(sb.group == 9);
  CHECK(sc.mode == Mode::kCap);
  CHECK(sc.priority == Priority::kLow);
  CHECK(sc.share_percent == 5);
  // Exactly one of the busy pair holds; the other waits.
  CHECK(sa.holder != sb.holder);
  CHECK((sa.holder ? sb.waiting : sa.waiting));
  CHECK_FALSE(sc.holder);
  CHECK_FALSE(sc.busy);
  CHECK(sa.delivered_share == Approx(0.30).margin(0.02));
  CHECK(sb.delivered_share == Approx(0.70).margin(0.02));
  CHECK(sc.delivered_share == 0.0);
  CHECK(sa.gpu_utilization + sb.gpu_utilization == Approx(1.0).margin(0.03));
  CHECK(sa.gpu_ns_total > 1 * kS);
  CHECK(sa.heartbeat_age_ns <= 60 * kMs);
  XPU_TS_REPORT("status: holder group %u, shares %.3f / %.3f, utilization %.3f / %.3f",
                st.holder_group, sa.delivered_share, sb.delivered_share, sa.gpu_utilization,
                sb.gpu_utilization);
}

}  // namespace
}  // namespace xpu::timeslice::test
