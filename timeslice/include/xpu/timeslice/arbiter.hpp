// The per-process, per-device handle on a DeviceSchedule: what the CUDA adapter calls.
//
//   join()           when the process starts using the device; leave() when it stops.
//   before_launch()  before every kernel / graph launch. kGo: launch (track it if told to).
//                    kWait: sleep until retry_at_ns and call again; for every reason but
//                    kOtherHolder, poll the completion events (and report them) first.
//   on_launch()      after each launch that Decision::track asked to track (record an event).
//   on_complete()    for tracked launches that finished, with their measured GPU busy time.
//   tick()           from the watcher thread, again at the time it returns (1 ms while work is
//                    in flight, the process waits or competes for the device; 50 us while the
//                    next holder waits for our queued work to drain; else 50 ms).
// All methods are noexcept, allocation-free and lock-free, and may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>

#include "xpu/timeslice/liveness.hpp"
#include "xpu/timeslice/schedule_table.hpp"
#include "xpu/timeslice/tunables.hpp"
#include "xpu/timeslice/types.hpp"

namespace xpu::timeslice {

enum class Verdict : std::uint8_t { kGo, kWait };

enum class WaitReason : std::uint8_t {
  kNone,           // (kGo)
  kOtherHolder,    // another group holds the device: sleep, call again
  kInflightBound,  // too much of our work is queued on the GPU: report completions, call again
  kCapBudget,      // cap mode budget spent: report completions, call again
  kDrain,          // a hand-over waits for a drain (exclusive hand-over): either we hold the
                   // device and the previous holder's queued work still runs, or we are that
                   // previous holder and the next one waits for our work. Report completions,
                   // call again soon (bounded by Tunables::max_drain_wait_ns).
};

struct Decision {
  Verdict verdict = Verdict::kGo;
  WaitReason reason = WaitReason::kNone;
  /// Go: record an event after this launch and report it (on_launch / on_complete). False only
  /// while nobody else competes for the device, so a lone share-mode process records nothing.
  bool track = false;
  /// Wait: call before_launch again at (or soon after) this time.
  Nanos retry_at_ns = 0;
  /// Internal: the decision may be cached by the clock-free fast path (see fast_go).
  bool fast_ok = false;

  bool go() const noexcept { return verdict == Verdict::kGo; }
};

class Arbiter {
 public:
  /// `slot` >= kMaxSlots gives a disabled arbiter that always says go (the shim keeps working).
  Arbiter(DeviceSchedule& table, std::uint32_t slot, const Tunables& tunables = {},
          Liveness alive = {}) noexcept;
  Arbiter(const Arbiter&) = delete;
  Arbiter& operator=(const Arbiter&) = delete;

  /// Starts using the device. Out-of-range values are clamped (share to 1..100); returns false
  /// (and stays disabled) only for a group >= kMaxGroups or a disabled arbiter. Re-joining changes
  /// the configuration. The group's configuration is the last joiner's.
  bool join(Nanos now, std::uint32_t group, std::uint32_t share_percent, Mode mode,
            Priority priority) noexcept;
  /// Stops using the device; hands the slice on if this was the group's last member holding it.
  void leave(Nanos now) noexcept;

  /// Before each launch. Fast path (holder inside its slice, or lone process): a few atomic loads.
  Decision before_launch(Nanos now) noexcept;
  /// Cheaper still, without a clock: true when the last before_launch said "go, untracked" to a
  /// share-mode holder (alone, or the highest class beside lower ones, probe not due) and no
  /// shared word it depended on has changed since, for a bounded number of launches (about half
  /// the idle grace at the recent launch rate). Then launch untracked; otherwise call
  /// before_launch.
  bool fast_go() noexcept;
  /// After a tracked launch was submitted (`launches` launches, usually 1).
  void on_launch(Nanos now, std::uint32_t launches = 1) noexcept;
  /// Tracked launches that completed, with the GPU busy time they took (ns), measured from events.
  void on_complete(Nanos now, std::uint32_t launches, std::uint64_t gpu_ns) noexcept;
  /// Periodic upkeep; returns when to tick next.
  Nanos tick(Nanos now) noexcept;

  bool joined() const noexcept;
  std::uint32_t slot() const noexcept { return slot_; }
  std::int64_t inflight_launches() const noexcept {
    return inflight_.load(std::memory_order_relaxed);
  }
  Nanos estimated_launch_ns() const noexcept {
    return avg_launch_ns_.load(std::memory_order_relaxed);
  }
  const Tunables& tunables() const noexcept { return t_; }

 private:
  MemberConfig config() const noexcept;
  std::uint64_t signals_signature() const noexcept;
  void arm_fast_path(Nanos now, std::uint64_t word, std::uint64_t signature) noexcept;
  static constexpr std::int64_t kMaxFastLaunches = 256;
  Decision as_holder(Nanos now, const MemberConfig& cfg, std::uint64_t word) noexcept;
  Decision go_as_holder(Nanos now, const MemberConfig& cfg, std::uint64_t word,
                        Nanos slice_age) noexcept;
  // How much longer this (new) holder waits for the previous holder's drain; 0: go.
  Nanos drain_wait_left(Nanos now, const MemberConfig& cfg, std::uint64_t word,
                        Nanos slice_age) noexcept;
  // How long into its slice a holder of priority `newer` waits for the drain of a group of
  // priority `older` (an unconfigured group counts as the holder's own priority).
  Nanos drain_limit(Priority newer, Priority older) const noexcept;
  bool drain_awaited(Nanos now, const MemberConfig& cfg, std::uint64_t word) const noexcept;
  Decision go_above_lower(Nanos now) noexcept;
  void anchor_queue(Nanos now) noexcept;
  Decision acquire(Nanos now, const MemberConfig& cfg, std::uint64_t word) noexcept;
  Decision wait_for_holder(Nanos now, const MemberConfig& cfg, std::uint64_t word) const noexcept;
  Decision cap_wait(Nanos now, const MemberConfig& cfg, Nanos ready) noexcept;
  bool may_take_over(Nanos now, const MemberConfig& cfg, std::uint64_t word) const noexcept;
  bool inflight_fits(Nanos bound, std::int64_t min_launches) const noexcept;
  Nanos cap_ready_at(Nanos now, const MemberConfig& cfg) const noexcept;
  bool should_track(Nanos now, const MemberConfig& cfg, bool contended) noexcept;

  void announce_want(Nanos now, const MemberConfig& cfg) noexcept;
  void withdraw_want(std::uint32_t group) noexcept;
  void catch_up_if_fresh(Nanos now, const MemberConfig& cfg) noexcept;
  void catch_up_vtime(Nanos now, const MemberConfig& cfg) noexcept;
  void refresh_busy(Nanos now, Nanos until) noexcept;
  void shorten_busy(std::uint32_t group, Nanos until) noexcept;
  void raise_inflight(Nanos now, std::uint32_t group) noexcept;
  void release_inflight(std::uint32_t group, Nanos now) noexcept;
  void refresh_presence(Nanos now, const MemberConfig& cfg, bool force) noexcept;
  void charge(Nanos now, const MemberConfig& cfg, std::uint64_t gpu_ns) noexcept;
  void record_slot_time(Nanos now, std::uint64_t gpu_ns) noexcept;
  void repair(const MemberConfig& cfg) noexcept;
  void reap(Nanos now) noexcept;
  bool group_has_other_live_member(std::uint32_t group, Nanos now) const noexcept;

  DeviceSchedule& table_;
  const std::uint32_t slot_;
  const Tunables t_;
  const Liveness alive_;
  const bool enabled_;

  // Process-local state. Atomics because the launch threads and the watcher thread share it.
  std::atomic<std::uint64_t> cfg_{0};  // this process's MemberConfig word (authoritative copy)
  std::atomic<std::int64_t> inflight_{0};
  std::atomic<Nanos> avg_launch_ns_{0};
  std::atomic<Nanos> progress_ns_{0};  // last completion, or first launch after none in flight
  // The leases this process last wrote: writes are rate-limited against them.
  std::atomic<Nanos> busy_written_{0};
  std::atomic<Nanos> inflight_written_{0};
  std::atomic<Nanos> want_written_{0};
  std::atomic<Nanos> presence_written_{0};
  std::atomic<Nanos> heartbeat_written_{0};
  std::atomic<Nanos> track_until_{0};
  std::atomic<Nanos> next_repair_{0};
  std::atomic<Nanos> next_reap_{0};
  // The holder word for which the previous holder's drain was already seen done (or was not ours
  // to wait for): later launches of that slice skip the check.
  std::atomic<std::uint64_t> drain_clear_word_{0};
  // The clock-free fast path (fast_go): the holder word and signals it was armed with, launches
  // left, when it was armed, and launches it let through since (the launch rate; go_above_lower
  // adds them to its queue).
  std::atomic<std::uint64_t> fast_word_{0};
  std::atomic<std::uint64_t> fast_signature_{0};
  std::atomic<std::int64_t> fast_left_{0};
  std::atomic<Nanos> fast_armed_at_{0};
  std::atomic<std::int64_t> fast_taken_{0};
  // Untracked highest class beside lower ones (go_above_lower): next sampled launch, the
  // estimated end of the work queued by untracked launches, and launches since the last probe.
  std::atomic<Nanos> next_probe_{0};
  std::atomic<Nanos> queue_end_{0};
  std::atomic<std::int64_t> since_probe_{0};
  std::atomic<bool> probing_{false};  // the tracked launch in flight is a probe (claims no lease)
};

}  // namespace xpu::timeslice
