// GPU time of this process's tracked launches on one device, measured from completion events.
//
// After each tracked launch the gate records an event on the launch's stream; a launch that
// starts from idle (no tracked launch of ours queued in the ring) also gets an event just before
// it. The watcher (and a launch thread told to wait for its own completions) polls the events in
// submission order. A completed launch is charged:
//   - from idle: elapsed(later of pre-event and latest completion seen so far, post-event);
//   - otherwise: elapsed(latest completion seen so far, post-event);
// at least 0. Summed, that is the union of the intervals in which this process had work on the
// GPU, so concurrent streams are not counted twice. The scheduler's exclusive hand-over keeps
// other processes' work out of those intervals.
//
// "From idle" is decided here, under the ring's lock, not from the arbiter's in-flight count:
// a chained launch is charged from the completion of a record polled before it, so one must
// already be in the ring. With several launch threads, the count also covers launches that
// another thread has made but not yet committed; a launch chained on one of those could be
// committed (and polled) first and was then charged from our previous slice's last completion,
// i.e. for the other processes' slices in between (20-60 ms seen on the simulated device).
// Likewise several threads may start from idle at once: each pre-event then also spans the
// others' kernels queued ahead, which the later-of rule does not charge twice.
//
// Events are created timing-enabled, once, per context, and reused. All driver calls the
// tracker makes run in RELAXED capture mode, so they never disturb another thread's capture.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <vector>

#include "cuda_api.hpp"

namespace xpu::shim::compute {

struct Completions {
  std::uint32_t launches = 0;  // tracked launches that finished (or were dropped)
  std::uint64_t gpu_ns = 0;    // the GPU time they took
  bool any() const { return launches > 0; }
};

class CompletionTracker {
 public:
  static constexpr std::size_t kCapacity = 4096;  // > Tunables::max_inflight_launches

  // Before a tracked launch on `stream` (the current context's); records a pre-event when no
  // tracked launch of ours is queued (poll first, so that finished ones are not). Returns false
  // when no event can be recorded (the launch then goes untracked).
  bool prepare(CUstream stream) noexcept;
  // After the launch: `launched` says whether the driver accepted it. Returns whether a record
  // was queued (it must then be reported by poll()).
  bool commit(CUstream stream, bool launched) noexcept;
  // Reports what completed since the last poll, in submission order.
  Completions poll() noexcept;
  // Blocks until the oldest tracked launch has completed; false (at once) when none is queued.
  bool wait_oldest() noexcept;
  bool full() const noexcept;

 private:
  struct Record {
    CUcontext ctx = nullptr;
    CUevent pre = nullptr;  // null unless the launch started from idle
    CUevent post = nullptr;
  };
  struct Pool {
    CUcontext ctx = nullptr;
    std::vector<CUevent> free;
  };
  CUevent take_event(CUcontext ctx) noexcept;                     // mu_ held
  void give_back(const Record& r) noexcept;                       // mu_ held
  std::uint64_t measure(const Record& r, bool* newest) noexcept;  // mu_ held

  mutable std::mutex mu_;
  std::array<Record, kCapacity> ring_{};
  std::size_t head_ = 0, size_ = 0;
  std::vector<Pool> pools_;
  CUevent last_done_ = nullptr;  // latest completion seen (kept out of the pool while held)
  CUcontext last_done_ctx_ = nullptr;
  // The launch being prepared, per thread (a launch thread prepares and commits in one call).
  static thread_local Record pending_;
};

}  // namespace xpu::shim::compute
