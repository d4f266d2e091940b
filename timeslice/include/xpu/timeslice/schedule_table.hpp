// The node-wide scheduling state of one device, as it lies in shared memory.
//
// Rules that make it safe to share between processes that may die at any instant:
//   * every field is a lock-free std::atomic (address-free, so it works across mappings); there
//     is no lock, so nothing can be left held by a dead process;
//   * all-zero bytes are the valid empty state (the segment is created zero-filled);
//   * no field is trusted: readers range-check and sanitise (a corrupted segment degrades
//     scheduling for a while, it never crashes a process), and timestamps are leases that expire
//     on their own.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "xpu/timeslice/types.hpp"

namespace xpu::timeslice {

/// Fold into the coordinator's segment version: bump on any change to the structs below or to the
/// meaning of their fields.
inline constexpr std::uint32_t kLayoutVersion = 2;

// ---- packed configuration word (slots and groups) ----

/// The configuration of a slot (one process on one device) or of a group. One 64-bit word, so a
/// reader always sees one writer's complete configuration.
///   bit 0      present (slot: joined; group: configured)
///   bits 1-8   group id
///   bits 9-15  share percent (1..100)
///   bit 16     mode
///   bits 17-18 priority (0..2)
///   bits 19-31 zero
///   bits 32-63 join epoch (slots: tells a re-joined slot from the one the reaper looked at)
struct MemberConfig {
  bool present = false;
  std::uint32_t group = 0;
  std::uint32_t share_percent = 0;
  Mode mode = Mode::kShare;
  Priority priority = Priority::kNormal;
  std::uint32_t epoch = 0;
};

namespace layout {
inline constexpr std::uint64_t kPresentBit = 1;
inline constexpr int kGroupShift = 1;
inline constexpr int kShareShift = 9;
inline constexpr int kModeShift = 16;
inline constexpr int kPriorityShift = 17;
inline constexpr std::uint64_t kReservedMask = 0xFFF8'0000ULL;  // bits 19-31
inline constexpr int kEpochShift = 32;
}  // namespace layout

constexpr std::uint64_t encode_config(const MemberConfig& c) noexcept {
  if (!c.present) return static_cast<std::uint64_t>(c.epoch) << layout::kEpochShift;
  return layout::kPresentBit | (std::uint64_t{c.group & 0xFFU} << layout::kGroupShift) |
         (std::uint64_t{c.share_percent & 0x7FU} << layout::kShareShift) |
         (std::uint64_t{static_cast<std::uint8_t>(c.mode) & 1U} << layout::kModeShift) |
         (std::uint64_t{static_cast<std::uint8_t>(c.priority) & 3U} << layout::kPriorityShift) |
         (static_cast<std::uint64_t>(c.epoch) << layout::kEpochShift);
}

/// Decodes a word read from shared memory. A word with reserved bits set, a share outside 1..100 or
/// an unknown priority decodes as not present: garbage never becomes a configuration.
constexpr MemberConfig decode_config(std::uint64_t w) noexcept {
  MemberConfig c;
  c.epoch = static_cast<std::uint32_t>(w >> layout::kEpochShift);
  if ((w & layout::kPresentBit) == 0 || (w & layout::kReservedMask) != 0) return c;
  const auto share = static_cast<std::uint32_t>((w >> layout::kShareShift) & 0x7FU);
  const auto prio = static_cast<std::uint32_t>((w >> layout::kPriorityShift) & 3U);
  if (share < kMinSharePercent || share > kMaxSharePercent || prio >= kPriorityLevels) return c;
  c.present = true;
  c.group = static_cast<std::uint32_t>((w >> layout::kGroupShift) & 0xFFU);
  c.share_percent = share;
  c.mode = ((w >> layout::kModeShift) & 1U) != 0 ? Mode::kCap : Mode::kShare;
  c.priority = static_cast<Priority>(prio);
  return c;
}

/// A group's word must also name its own index; anything else is corruption.
constexpr MemberConfig decode_group_config(std::uint64_t w, std::uint32_t group) noexcept {
  MemberConfig c = decode_config(w);
  if (c.present && c.group != group) c.present = false;
  return c;
}

// ---- holder word ----

/// Which group holds the device and since when, in one word so that a hand-over is one CAS:
///   bits 0-15  0 = nobody, 1..256 = group + 1, other = corrupt (treated as nobody)
///   bits 16-63 slice start in microseconds, modulo 2^48 (compared modulo too, so it never wraps
///              into a wrong answer); a hand-over always changes the word, which rules out ABA.
struct HolderWord {
  bool present = false;  // a valid group holds the device
  std::uint32_t group = 0;
  std::uint64_t start_us = 0;
};

namespace layout {
inline constexpr int kStartShift = 16;
inline constexpr std::uint64_t kStartMask = (std::uint64_t{1} << 48) - 1;
}  // namespace layout

constexpr HolderWord decode_holder(std::uint64_t w) noexcept {
  HolderWord h;
  const auto code = static_cast<std::uint32_t>(w & 0xFFFFU);
  h.start_us = (w >> layout::kStartShift) & layout::kStartMask;
  if (code >= 1 && code <= kMaxGroups) {
    h.present = true;
    h.group = code - 1;
  }
  return h;
}

constexpr std::uint64_t encode_holder(std::uint32_t group, std::uint64_t start_us) noexcept {
  return ((start_us & layout::kStartMask) << layout::kStartShift) | std::uint64_t{group + 1};
}

inline constexpr std::uint64_t kNoHolder = 0;

// ---- previous-holder word ----

/// The group that held the device before the current holder word was installed, so that the new
/// holder can wait until that group's queued work has drained (exclusive hand-over). Written right
/// after every successful hand-over:
///   bits 0-15  0 = none, 1..256 = previous group + 1, other = corrupt (treated as none)
///   bits 16-63 bits 16-63 of the holder word it belongs to (its slice start). A record whose tag
///              differs from the current holder word is stale (or not yet written) and means none.
/// Installing "nobody" records the group that let go under the tag of kNoHolder, and the next
/// install from nobody carries it over, so a group that gives the device away without a successor
/// is still drained before the next one starts.
struct PreviousHolder {
  bool present = false;  // the record belongs to the given holder word and names a valid group
  std::uint32_t group = 0;
};

constexpr std::uint64_t encode_previous(std::uint64_t holder_word, bool present,
                                        std::uint32_t group) noexcept {
  return (holder_word & ~std::uint64_t{0xFFFF}) | (present ? std::uint64_t{group + 1} & 0xFFFF : 0);
}

/// The record `w` as it applies to `holder_word`.
constexpr PreviousHolder decode_previous(std::uint64_t w, std::uint64_t holder_word) noexcept {
  PreviousHolder p;
  if ((w >> layout::kStartShift) != (holder_word >> layout::kStartShift)) return p;
  const auto code = static_cast<std::uint32_t>(w & 0xFFFFU);
  if (code >= 1 && code <= kMaxGroups) {
    p.present = true;
    p.group = code - 1;
  }
  return p;
}

/// Does the record `w` belong to `holder_word` at all (even if it names nobody)?
constexpr bool previous_matches(std::uint64_t w, std::uint64_t holder_word) noexcept {
  return (w >> layout::kStartShift) == (holder_word >> layout::kStartShift);
}

// ---- the table ----

/// Per slot, per device. Written by the slot's owner (and cleared by a reaper once the owner is
/// dead); read by everyone for hand-over decisions and `xpu-run status`.
struct alignas(64) SlotSchedule {
  std::atomic<std::uint64_t> config;         // MemberConfig word; 0 = free
  std::atomic<Nanos> heartbeat_ns;           // owner's last tick; liveness is asked only when stale
  std::atomic<Nanos> want_until_ns;          // lease: the owner waits for the device (status only)
  std::atomic<Nanos> busy_until_ns;          // lease: the owner has work (status only)
  std::atomic<std::uint64_t> gpu_ns_total;   // GPU time charged since join
  std::atomic<std::uint64_t> window_index;   // delivered-share window: now / share_window_ns ...
  std::atomic<std::uint64_t> window_cur_ns;  // ... GPU time charged in that window
  std::atomic<std::uint64_t> window_prev_ns;  // ... and in the one before
};

/// Per group, per device: the unit of arbitration. Members of a group share its entitlement.
struct alignas(64) GroupSchedule {
  std::atomic<std::uint64_t> config;  // MemberConfig word of the last member to join
  std::atomic<std::uint64_t> vtime;   // virtual time: sum of gpu_ns * 100 / share, modulo 2^64
  std::atomic<Nanos> cap_tat_ns;      // cap mode: when the budget is back to zero (GCRA)
  std::atomic<Nanos> busy_until_ns;   // lease: some member has work (launching or in flight)
  std::atomic<Nanos> want_until_ns;   // lease: some member waits for the device
  std::atomic<std::uint64_t> gpu_ns_total;  // GPU time charged to the group
  std::atomic<Nanos> inflight_until_ns;     // lease: some member has tracked work queued on the GPU
                                            // (a new holder waits for it: exclusive hand-over)
  std::atomic<std::uint64_t> reserved[1];
};

/// One device. The coordinator keeps kMaxDevices of these in its segment, each 64-byte aligned.
struct alignas(64) DeviceSchedule {
  // Line 0, read on every launch, written once per hand-over.
  std::atomic<std::uint64_t> holder;           // HolderWord
  std::atomic<std::uint64_t> handovers;        // count of changes of holder group (status)
  std::atomic<std::uint64_t> previous_holder;  // PreviousHolder: whose drain the holder waits for
  std::atomic<std::uint64_t> reserved0[5];
  // Line 1, read on every launch by a holder, written a few times per ms at most (rate-limited).
  std::atomic<Nanos> demand_until_ns[kPriorityLevels];  // lease: a group of this priority waits
  std::atomic<Nanos>
      present_until_ns[kPriorityLevels];  // lease: a process of this priority is joined
  std::atomic<std::uint64_t> reserved1[2];
  // Line 2, written at hand-overs.
  std::atomic<std::uint64_t> vtime_floor[kPriorityLevels];  // least vtime of the competitors
  std::atomic<std::uint64_t> reserved2[5];

  SlotSchedule slots[kMaxSlots];
  GroupSchedule groups[kMaxGroups];
};

static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
static_assert(std::atomic<Nanos>::is_always_lock_free);
static_assert(sizeof(SlotSchedule) == 64);
static_assert(sizeof(GroupSchedule) == 64);
static_assert(sizeof(DeviceSchedule) == 3 * 64 + kMaxSlots * 64 + kMaxGroups * 64);
static_assert(sizeof(DeviceSchedule) == 32960);
static_assert(alignof(DeviceSchedule) == 64);
static_assert(std::is_standard_layout_v<DeviceSchedule>);
static_assert(std::is_trivially_destructible_v<DeviceSchedule>);
static_assert(offsetof(DeviceSchedule, demand_until_ns) == 64);
static_assert(offsetof(DeviceSchedule, vtime_floor) == 128);
static_assert(offsetof(DeviceSchedule, slots) == 192);
static_assert(offsetof(DeviceSchedule, previous_holder) == 16);  // line 0, next to the holder
static_assert(offsetof(GroupSchedule, inflight_until_ns) == 48);

}  // namespace xpu::timeslice
