// Hand-over: who holds the device next. Any process may run it (the holder at the end of its
// slice, a waiter that finds the holder idle, dead or outranked); one CAS on the holder word
// decides between concurrent attempts, so there is never a lock to be left held.
#include "holder.hpp"

#include <algorithm>
#include <atomic>

#include "lease.hpp"
#include "xpu/timeslice/cap_budget.hpp"
#include "xpu/timeslice/vtime.hpp"

namespace xpu::timeslice::detail {

namespace {

constexpr std::int64_t kStartSignBit = std::int64_t{1} << 47;
constexpr Nanos kClockSkewNs = 1'000'000;  // processes read the clock at slightly different times

}  // namespace

Nanos slice_age_ns(std::uint64_t start_us, Nanos now) noexcept {
  const auto now_us = static_cast<std::uint64_t>(now / 1000) & layout::kStartMask;
  // 48-bit modular difference, sign-extended.
  auto diff = static_cast<std::int64_t>((now_us - start_us) & layout::kStartMask);
  if (diff >= kStartSignBit) diff -= kStartSignBit * 2;
  if (diff < 0) return diff * 1000 > -kClockSkewNs ? 0 : kMaxNow;
  return diff * 1000;
}

std::uint64_t next_holder_word(std::uint32_t group, Nanos now, std::uint64_t previous) noexcept {
  auto start_us = static_cast<std::uint64_t>(now / 1000);
  std::uint64_t word = encode_holder(group, start_us);
  if (word == previous) word = encode_holder(group, start_us + 1);  // same group, same microsecond
  return word;
}

bool group_throttled(const GroupSchedule& g, const MemberConfig& cfg, const Tunables& t,
                     Nanos now) noexcept {
  return cfg.mode == Mode::kCap &&
         cap::throttled(g.cap_tat_ns.load(std::memory_order_relaxed), now, t.cap_params());
}

Pick pick_next(DeviceSchedule& d, const Tunables& t, Nanos now, std::uint64_t holder_word,
               std::int32_t exclude, std::int32_t asking) noexcept {
  const HolderWord holder = decode_holder(holder_word);

  // Groups with at least one joined member. A group whose members all left or were reaped may
  // still have live-looking leases (or garbage ones); it must never be handed the device.
  std::uint64_t members[kMaxGroups / 64] = {};
  for (const SlotSchedule& s : d.slots) {
    const MemberConfig c = decode_config(s.config.load(std::memory_order_acquire));
    if (c.present) members[c.group / 64] |= std::uint64_t{1} << (c.group % 64);
  }

  // Pass 1: the candidates, with their vtime distance from the floor of their priority.
  struct Candidate {  // 24 bytes: the array stays small on a launching thread's stack
    std::uint64_t vtime;
    std::int64_t dist;
    std::uint16_t group;
    std::uint8_t prio;
    std::uint8_t share;
    bool holds_busy;
  };
  Candidate cands[kMaxGroups];
  std::uint32_t n = 0;
  std::uint64_t floors[kPriorityLevels];
  bool any[kPriorityLevels] = {};
  std::int64_t least[kPriorityLevels] = {};
  std::uint32_t top = 0;
  for (std::uint32_t p = 0; p < kPriorityLevels; ++p) {
    floors[p] = d.vtime_floor[p].load(std::memory_order_relaxed);
  }
  for (std::uint32_t gi = 0; gi < kMaxGroups; ++gi) {
    if (static_cast<std::int32_t>(gi) == exclude) continue;
    if ((members[gi / 64] >> (gi % 64) & 1U) == 0) continue;
    GroupSchedule& g = d.groups[gi];
    const MemberConfig cfg = decode_group_config(g.config.load(std::memory_order_acquire), gi);
    if (!cfg.present) continue;
    const bool wants = static_cast<std::int32_t>(gi) == asking || lease_live(g.want_until_ns, now);
    const bool holds_busy =
        holder.present && holder.group == gi && lease_live(g.busy_until_ns, now);
    if (!wants && !holds_busy) continue;
    if (group_throttled(g, cfg, t, now)) continue;
    const std::uint32_t prio = priority_index(cfg.priority);
    const std::uint64_t vt = g.vtime.load(std::memory_order_relaxed);
    const std::int64_t dist = vtime::distance(vt, floors[prio]);
    cands[n++] = {vt,
                  dist,
                  static_cast<std::uint16_t>(gi),
                  static_cast<std::uint8_t>(prio),
                  static_cast<std::uint8_t>(cfg.share_percent),
                  holds_busy};
    if (!any[prio] || dist < least[prio]) least[prio] = dist;
    any[prio] = true;
    top = std::max(top, prio);
  }
  if (n == 0) return {};

  // The floor follows the least vtime among the competitors of the top priority (never back).
  // Picks are the only place that sees all competitors at once, so a lone holder that ran for a
  // long time moves the floor at the next pick instead of being taken for corruption.
  const std::int64_t advance = std::max<std::int64_t>(least[top], 0);
  const std::uint64_t floor = floors[top] + static_cast<std::uint64_t>(advance);
  if (advance > 0) {
    // One CAS; if another picker moved the floor meanwhile, its value is as good.
    std::uint64_t expected = floors[top];
    d.vtime_floor[top].compare_exchange_strong(expected, floor, std::memory_order_relaxed);
  }

  // Pass 2: among the top priority, least vtime; ties keep the current holder (no needless
  // switch), then the lowest group id. A distance beyond [-max_lag, +max_lead] from the floor is
  // corruption (or an absence that catch-up did not see): clamp it so that nobody starves.
  Pick best;
  std::int64_t best_dist = 0;
  for (std::uint32_t i = 0; i < n; ++i) {
    const Candidate& c = cands[i];
    if (c.prio != top) continue;
    const std::int64_t dist = c.dist - advance;
    const std::int64_t clamped = vtime::clamp_distance(
        dist, t.vtime_max_lag_ns, vtime::max_lead(t.vtime_max_lead_gpu_ns, c.share));
    if (clamped != dist) {
      std::uint64_t expected = c.vtime;
      d.groups[c.group].vtime.compare_exchange_strong(
          expected, floor + static_cast<std::uint64_t>(clamped), std::memory_order_relaxed);
    }
    if (!best.found || clamped < best_dist || (clamped == best_dist && c.holds_busy)) {
      best = {true, c.group};
      best_dist = clamped;
    }
  }
  return best;
}

Handover hand_over(DeviceSchedule& d, const Tunables& t, Nanos now, std::uint64_t expected,
                   std::int32_t exclude, std::int32_t asking) noexcept {
  const HolderWord old = decode_holder(expected);
  const Pick pick = pick_next(d, t, now, expected, exclude, asking);
  std::uint64_t desired = 0;
  if (pick.found) {
    desired = next_holder_word(pick.group, now, expected);
  } else if (exclude != kNoGroup && old.present &&
             static_cast<std::int32_t>(old.group) == exclude) {
    desired = kNoHolder;
  } else {
    return {HandoverStatus::kNoCandidate, expected};
  }

  std::uint64_t current = expected;
  if (!d.holder.compare_exchange_strong(current, desired, std::memory_order_acq_rel,
                                        std::memory_order_acquire)) {
    return {HandoverStatus::kRaced, current};
  }
  // Record whose queued work the new holder lets drain before it starts (exclusive hand-over),
  // tagged with the new word so that a stale record never applies to a later slice. A group that
  // lets go to nobody is recorded under kNoHolder's tag and carried over to the next install.
  PreviousHolder prev;
  if (old.present) {
    prev.present = !pick.found || old.group != pick.group;
    prev.group = old.group;
  } else {
    prev = decode_previous(d.previous_holder.load(std::memory_order_relaxed), expected);
  }
  d.previous_holder.store(encode_previous(desired, prev.present, prev.group),
                          std::memory_order_relaxed);
  if (pick.found && !(old.present && old.group == pick.group)) {
    // Another group's members may be asleep for up to a poll: they get pickup_grace to launch
    // before a waiter may pass them over (which also bounds a picked waiter that died). A group
    // that installed itself launches right away and needs none.
    if (static_cast<std::int32_t>(pick.group) != asking) {
      raise_lease(d.groups[pick.group].busy_until_ns, now + t.pickup_grace_ns, now);
    }
    d.handovers.fetch_add(1, std::memory_order_relaxed);
  }
  return {HandoverStatus::kInstalled, desired};
}

}  // namespace xpu::timeslice::detail
