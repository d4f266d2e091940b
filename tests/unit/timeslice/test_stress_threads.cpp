// Real threads, real clock, one table in process memory: races between hand-overs, launches,
// completions, ticks, join/leave churn, a "killed" participant and a status reader. Checks
// progress and sanity only (timing on a loaded machine is not deterministic); meant to be run
// under -fsanitize=thread as well.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "ts_test_support.hpp"
#include "xpu/timeslice/arbiter.hpp"
#include "xpu/timeslice/clock.hpp"
#include "xpu/timeslice/status.hpp"

namespace xpu::timeslice::test {
namespace {

struct Shared {
  std::unique_ptr<DeviceSchedule> table = std::make_unique<DeviceSchedule>();
  std::atomic<bool> stop{false};
  std::atomic<bool> alive[kMaxSlots];
  Shared() {
    for (auto& a : alive) a.store(true);
  }
};

bool alive_fn(void* ctx, std::uint32_t slot) noexcept {
  return slot < kMaxSlots && static_cast<Shared*>(ctx)->alive[slot].load();
}

void sleep_until(Nanos t) {
  const Nanos now = monotonic_now_ns();
  if (t > now)
    std::this_thread::sleep_for(std::chrono::nanoseconds(std::min<Nanos>(t - now, 300 * kUs)));
}

// One simulated process: `launchers` launch threads and a watcher thread share one Arbiter. The
// "GPU" is a per-process queue of completion times (kernels run back to back).
struct Process {
  Shared& shared;
  std::uint32_t slot;
  Arbiter arb;
  std::atomic<std::uint64_t> goes{0};
  std::atomic<bool> dead{false};
  std::atomic<Nanos> gpu_tail{0};
  std::atomic<std::uint64_t> launched_tracked{0};
  std::atomic<std::uint64_t> completed_tracked{0};

  Process(Shared& s, std::uint32_t sl, const Tunables& t)
      : shared(s), slot(sl), arb(*s.table, sl, t, Liveness(alive_fn, &s)) {}

  void launcher(std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<Nanos> dur(30 * kUs, 300 * kUs);
    while (!shared.stop.load() && !dead.load()) {
      const Nanos now = monotonic_now_ns();
      const Decision d = arb.before_launch(now);
      if (!d.go()) {
        sleep_until(d.retry_at_ns);
        continue;
      }
      goes.fetch_add(1);
      // Queue a kernel: it ends `dur` after the later of now and the process's previous kernel.
      const Nanos k = dur(rng);
      Nanos tail = gpu_tail.load();
      while (!gpu_tail.compare_exchange_weak(tail, std::max(tail, now) + k)) {
      }
      if (d.track) {
        arb.on_launch(now);
        launched_tracked.fetch_add(1);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  }

  void watcher() {
    while (!shared.stop.load() && !dead.load()) {
      const Nanos now = monotonic_now_ns();
      // Completions: everything tracked is done once the GPU tail has passed.
      const std::uint64_t launched = launched_tracked.load();
      const std::uint64_t done = completed_tracked.load();
      if (launched > done && gpu_tail.load() <= now) {
        completed_tracked.store(launched);
        arb.on_complete(now, static_cast<std::uint32_t>(launched - done),
                        (launched - done) * 100 * kUs);
      }
      sleep_until(arb.tick(now));
    }
  }
};

TEST_CASE("stress: threads racing on one table make progress and keep it sane",
          "[timeslice][stress]") {
  Shared shared;
  Tunables t;
  t.slice_ns = 5 * kMs;  // many hand-overs in a short run
  std::vector<std::unique_ptr<Process>> procs;
  // (No low-priority process: with normal ones always busy, strict precedence starves it.)
  const Priority prios[] = {Priority::kNormal, Priority::kNormal, Priority::kHigh,
                            Priority::kNormal, Priority::kNormal, Priority::kNormal};
  const Mode modes[] = {Mode::kShare, Mode::kShare, Mode::kShare,
                        Mode::kShare, Mode::kCap,   Mode::kShare};
  for (std::uint32_t i = 0; i < 6; ++i) {
    procs.push_back(std::make_unique<Process>(shared, i, t));
    REQUIRE(procs.back()->arb.join(monotonic_now_ns(), i % 5, 10 + 15 * i, modes[i], prios[i]));
  }
  std::vector<std::thread> threads;
  for (std::uint32_t i = 0; i < procs.size(); ++i) {
    Process* p = procs[i].get();
    threads.emplace_back([p, i] { p->launcher(i * 2 + 1); });
    if (i % 2 == 0) threads.emplace_back([p, i] { p->launcher(i * 2 + 2); });  // 2 launch threads
    threads.emplace_back([p] { p->watcher(); });
  }
  // Churn: slot 5 leaves and re-joins; a status reader runs concurrently.
  threads.emplace_back([&] {
    bool in = true;
    while (!shared.stop.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(7));
      if (in) {
        procs[5]->arb.leave(monotonic_now_ns());
      } else {
        procs[5]->arb.join(monotonic_now_ns(), 7, 40, Mode::kShare, Priority::kNormal);
      }
      in = !in;
    }
  });
  std::atomic<bool> status_ok{true};  // Catch2 assertions are not thread-safe: check after join
  threads.emplace_back([&] {
    while (!shared.stop.load()) {
      const DeviceStatus st = read_status(*shared.table, monotonic_now_ns());
      if (st.slots.size() > 6) status_ok.store(false);
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  });

  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  // "SIGKILL" process 2 (the high-priority one) wherever it is, holding the device or not.
  procs[2]->dead.store(true);
  shared.alive[2].store(false);
  const std::uint64_t before = procs[0]->goes.load() + procs[1]->goes.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(350));
  shared.stop.store(true);
  for (auto& th : threads) th.join();

  CHECK(status_ok.load());
  // Everyone alive made progress, also after the high-priority process died.
  for (std::uint32_t i = 0; i < procs.size(); ++i) {
    INFO("process " << i);
    CHECK(procs[i]->goes.load() > 0);
  }
  CHECK(procs[0]->goes.load() + procs[1]->goes.load() > before);
  const HolderWord h = decode_holder(shared.table->holder.load());
  if (h.present) CHECK(h.group < kMaxGroups);
  XPU_TS_REPORT("stress: goes %llu %llu %llu %llu %llu %llu, handovers %llu",
                static_cast<unsigned long long>(procs[0]->goes.load()),
                static_cast<unsigned long long>(procs[1]->goes.load()),
                static_cast<unsigned long long>(procs[2]->goes.load()),
                static_cast<unsigned long long>(procs[3]->goes.load()),
                static_cast<unsigned long long>(procs[4]->goes.load()),
                static_cast<unsigned long long>(procs[5]->goes.load()),
                static_cast<unsigned long long>(shared.table->handovers.load()));
}

}  // namespace
}  // namespace xpu::timeslice::test
