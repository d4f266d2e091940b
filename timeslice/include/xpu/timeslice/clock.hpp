// Time sources. The scheduler never reads a clock itself: every call takes `now`, so tests drive it
// with FakeClock and the adapter passes monotonic_now_ns().
#pragma once

#include <chrono>

#include "xpu/timeslice/types.hpp"

namespace xpu::timeslice {

/// CLOCK_MONOTONIC (libstdc++'s steady_clock), served by the vDSO: no system call on the launch
/// path.
inline Nanos monotonic_now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// A clock the tests move by hand. Starts at 1 s so that zeroed leases (time 0) are already
/// expired.
class FakeClock {
 public:
  explicit FakeClock(Nanos start = 1'000'000'000) noexcept : now_(start) {}
  Nanos now() const noexcept { return now_; }
  void advance(Nanos by) noexcept { now_ += by; }
  void set(Nanos to) noexcept { now_ = to; }

 private:
  Nanos now_;
};

}  // namespace xpu::timeslice
