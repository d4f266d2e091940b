// The compute gate of one device in this process: the CUDA side of timeslice::Arbiter.
//
//   before()  ahead of a kernel or graph launch: asks the arbiter, sleeps while told to wait
//             (polling our own completions first when the wait is about our queued work), and
//             prepares a completion event when the launch is to be tracked;
//   after()   records the completion event and tells the arbiter;
//   service() from the watcher thread: reports completions, renews leases (Arbiter::tick).
// Launches into a capturing stream are neither gated nor tracked: nothing runs until the graph
// is launched, and an event or a query there would change (or break) the capture.
#pragma once

#include <atomic>
#include <cstdint>

#include "compute/completion_tracker.hpp"
#include "cuda_api.hpp"
#include "xpu/timeslice/arbiter.hpp"

namespace xpu::shim::compute {

struct JoinSpec {
  std::uint32_t group = 0;
  std::uint32_t share_percent = 100;
  timeslice::Mode mode = timeslice::Mode::kShare;
  timeslice::Priority priority = timeslice::Priority::kNormal;
  timeslice::Tunables tunables;  // defaults, or XPU_SCHED_TUNABLES
};

struct Ticket {
  bool tracked = false;
  CUstream stream = nullptr;  // normalised: the per-thread default stream is explicit
};

class DeviceGate {
 public:
  DeviceGate(timeslice::DeviceSchedule& table, std::uint32_t slot, const JoinSpec& spec,
             timeslice::Liveness alive) noexcept;

  Ticket before(CUstream stream) noexcept;
  void after(const Ticket& ticket, CUresult rc) noexcept;
  // Watcher upkeep; returns when it wants to be called again (CLOCK_MONOTONIC ns).
  timeslice::Nanos service(timeslice::Nanos now) noexcept;
  void leave() noexcept;

 private:
  bool report(timeslice::Nanos now) noexcept;  // true if something completed

  timeslice::Arbiter arbiter_;
  CompletionTracker tracker_;
  const JoinSpec spec_;
  std::atomic<bool> joined_{false};
  std::atomic<bool> left_{false};
};

// While alive, the calling thread's timer slack is 1 us (restored after): waits poll every
// 50 us and must not overrun by the default 50 us slack.
class FineTimerSlack {
 public:
  static constexpr int kSlackNs = 1000;
  FineTimerSlack() noexcept;
  ~FineTimerSlack();
  FineTimerSlack(const FineTimerSlack&) = delete;
  FineTimerSlack& operator=(const FineTimerSlack&) = delete;

 private:
  int saved_ = 0;
};

// Sleeps until `when` on CLOCK_MONOTONIC (the scheduler's clock).
void sleep_until(timeslice::Nanos when) noexcept;

}  // namespace xpu::shim::compute
