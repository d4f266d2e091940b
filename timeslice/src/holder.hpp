// Choosing and installing the holder of a device (the only place that writes
// DeviceSchedule::holder).
#pragma once

#include <cstdint>

#include "xpu/timeslice/arbiter.hpp"
#include "xpu/timeslice/schedule_table.hpp"
#include "xpu/timeslice/tunables.hpp"

namespace xpu::timeslice::detail {

inline constexpr std::int32_t kNoGroup = -1;

/// Age of the slice that started at `start_us`. A start a little in the future (another process
/// read the clock a moment later) counts as 0; one far in the future is corruption and counts as
/// an expired slice.
Nanos slice_age_ns(std::uint64_t start_us, Nanos now) noexcept;

/// The holder word for `group` starting now, guaranteed to differ from `previous`.
std::uint64_t next_holder_word(std::uint32_t group, Nanos now, std::uint64_t previous) noexcept;

struct Pick {
  bool found = false;
  std::uint32_t group = 0;
};

/// The group that should hold the device next: among groups that wait, plus the current holder if
/// it is still busy, those of the highest priority present, and of those the least virtual time.
/// `asking` counts as waiting even before it published its demand (a process that can take the
/// device at once never publishes any, so a lone process never looks contended). Skips `exclude`
/// and cap groups whose budget is spent. Repairs (by CAS) vtimes that are implausibly far from the
/// floor and advances the floor of the chosen priority.
Pick pick_next(DeviceSchedule& d, const Tunables& t, Nanos now, std::uint64_t holder_word,
               std::int32_t exclude, std::int32_t asking = kNoGroup) noexcept;

enum class HandoverStatus : std::uint8_t { kInstalled, kRaced, kNoCandidate };

struct Handover {
  HandoverStatus status = HandoverStatus::kNoCandidate;
  std::uint64_t word = 0;  // the holder word after the attempt
};

/// Picks the next holder and installs it with one CAS from `expected`. kRaced: the word had already
/// changed (returned in .word). When no group qualifies and `exclude` is the current holder,
/// installs "nobody" so that the excluded group really lets go.
Handover hand_over(DeviceSchedule& d, const Tunables& t, Nanos now, std::uint64_t expected,
                   std::int32_t exclude, std::int32_t asking = kNoGroup) noexcept;

/// Is a group with this configuration and budget out of the running (cap mode, budget spent)?
bool group_throttled(const GroupSchedule& g, const MemberConfig& cfg, const Tunables& t,
                     Nanos now) noexcept;

}  // namespace xpu::timeslice::detail
