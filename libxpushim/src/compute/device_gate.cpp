#include "compute/device_gate.hpp"

#include <sys/prctl.h>
#include <time.h>

#include <cerrno>

#include <optional>

#include "driver/driver_api.hpp"
#include "xpu/timeslice/clock.hpp"

namespace xpu::shim::compute {
using timeslice::Nanos;

void sleep_until(Nanos when) noexcept {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(when / 1'000'000'000);
  ts.tv_nsec = static_cast<long>(when % 1'000'000'000);
  while (::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

FineTimerSlack::FineTimerSlack() noexcept {
  // Linux lets a sleep overrun by the thread's timer slack (50 us by default), which would double
  // every 50 us poll of a wait for a drain or a completion.
  const int saved = ::prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
  if (saved > 0 && saved != kSlackNs && ::prctl(PR_SET_TIMERSLACK, kSlackNs, 0, 0, 0) == 0)
    saved_ = saved;
}

FineTimerSlack::~FineTimerSlack() {
  if (saved_ > 0) ::prctl(PR_SET_TIMERSLACK, saved_, 0, 0, 0);
}

DeviceGate::DeviceGate(timeslice::DeviceSchedule& table, std::uint32_t slot, const JoinSpec& spec,
                       timeslice::Liveness alive) noexcept
    : arbiter_(table, slot, spec.tunables, alive), spec_(spec) {}

Ticket DeviceGate::before(CUstream stream) noexcept {
  Ticket t{false, stream};
  if (!joined_.load(std::memory_order_acquire)) [[unlikely]] {
    if (left_.load(std::memory_order_acquire)) return t;
    // Joining twice (two threads' first launches) only renews the configuration.
    arbiter_.join(timeslice::monotonic_now_ns(), spec_.group, spec_.share_percent, spec_.mode,
                  spec_.priority);
    joined_.store(true, std::memory_order_release);
  }
  // A lone holder whose view of the device is unchanged: no clock, no decision.
  if (arbiter_.fast_go()) return t;
  bool capture_checked = false;
  std::optional<FineTimerSlack> fine;  // set up on the first wait, restored on return
  for (;;) {
    const timeslice::Decision d = arbiter_.before_launch(timeslice::monotonic_now_ns());
    if (d.go()) {
      if (!d.track) return t;
      break;
    }
    if (!capture_checked) {
      capture_checked = true;
      if (stream_capturing(stream, false)) return t;  // recorded into a graph: nothing runs now
    }
    // Waits about our own queued work (in-flight bound, cap budget, a drain) end when our
    // completions are reported: look at them first, and ask again at once if any came in.
    if (d.reason != timeslice::WaitReason::kOtherHolder && report(timeslice::monotonic_now_ns()))
      continue;
    if (d.reason == timeslice::WaitReason::kInflightBound && tracker_.wait_oldest()) {
      // Too much of ours is queued: wake exactly when the oldest finishes, not a poll later, so
      // the GPU does not idle between our kernels (a low-priority process keeps only a sliver
      // queued, so every microsecond of polling would be lost GPU time).
      continue;
    }
    if (!fine) fine.emplace();
    sleep_until(d.retry_at_ns);
  }
  if (!capture_checked && stream_capturing(stream, false)) return t;
  // Report what finished first (one event query while work is queued), so that "from idle" is
  // true whenever the GPU ran out of our work: the idle gap must not be charged to this launch.
  report(timeslice::monotonic_now_ns());
  t.tracked = tracker_.prepare(stream);
  return t;
}

void DeviceGate::after(const Ticket& ticket, CUresult rc) noexcept {
  if (!ticket.tracked) return;
  const bool launched = rc == CUDA_SUCCESS;
  // Count it in flight before the record is visible to the watcher, so that its completion can
  // never be reported ahead of its launch.
  if (launched) arbiter_.on_launch(timeslice::monotonic_now_ns());
  if (!tracker_.commit(ticket.stream, launched) && launched)
    arbiter_.on_complete(timeslice::monotonic_now_ns(), 1, 0);  // untracked after all
}

bool DeviceGate::report(Nanos now) noexcept {
  const Completions c = tracker_.poll();
  if (!c.any()) return false;
  arbiter_.on_complete(now, c.launches, c.gpu_ns);
  return true;
}

Nanos DeviceGate::service(Nanos now) noexcept {
  if (!joined_.load(std::memory_order_acquire)) return now + 50'000'000;
  report(now);
  return arbiter_.tick(now);
}

void DeviceGate::leave() noexcept {
  left_.store(true, std::memory_order_release);
  if (joined_.exchange(false, std::memory_order_acq_rel))
    arbiter_.leave(timeslice::monotonic_now_ns());
}

}  // namespace xpu::shim::compute
