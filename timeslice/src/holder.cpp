// Hand-over: who holds the device next. Any process may run it (the holder at the end of its
// slice, a waiter that finds the holder idle, dead or outranked); one CAS on the holder word
// decides between concurrent attempts, so there is never a lock to be left held.
#include "holder.hpp"

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
  std::uint64_t floors[kPriorityLevels];
  for (std::uint32_t p = 0; p < kPriorityLevels; ++p) {
    floors[p] = d.vtime_floor[p].load(std::memory_order_relaxed);
  }

  Pick best;
  std::uint32_t best_prio = 0;
  std::int64_t best_dist = 0;
  for (std::uint32_t gi = 0; gi < kMaxGroups; ++gi) {
    if (static_cast<std::int32_t>(gi) == exclude) continue;
    GroupSchedule& g = d.groups[gi];
    const MemberConfig cfg = decode_group_config(g.config.load(std::memory_order_acquire), gi);
    if (!cfg.present) continue;
    const bool wants = static_cast<std::int32_t>(gi) == asking || lease_live(g.want_until_ns, now);
    const bool holds_busy = holder.present && holder.group == gi && lease_live(g.busy_until_ns, now);
    if (!wants && !holds_busy) continue;
    if (group_throttled(g, cfg, t, now)) continue;
    const std::uint32_t prio = priority_index(cfg.priority);
    if (best.found && prio < best_prio) continue;

    // Distance from the floor of its priority, clamped: only corruption (or a very long absence
    // that fresh-activation catch-up did not see) gets this far, and it must not starve anyone.
    std::uint64_t vt = g.vtime.load(std::memory_order_relaxed);
    const std::int64_t dist = vtime::distance(vt, floors[prio]);
    const std::int64_t clamped = vtime::clamp_distance(
        dist, t.vtime_max_lag_ns, vtime::max_lead(t.vtime_max_lead_gpu_ns, cfg.share_percent));
    if (clamped != dist) {
      const std::uint64_t repaired = floors[prio] + static_cast<std::uint64_t>(clamped);
      g.vtime.compare_exchange_strong(vt, repaired, std::memory_order_relaxed);
    }

    // Higher priority wins; then least vtime; ties keep the current holder (no needless switch),
    // then the lowest group id.
    const bool better = !best.found || prio > best_prio || clamped < best_dist ||
                        (clamped == best_dist && holds_busy);
    if (better) {
      best = {true, gi};
      best_prio = prio;
      best_dist = clamped;
    }
  }

  if (best.found && best_dist > 0) {
    // The chosen group has the least vtime of its class: the floor may advance to it. One CAS;
    // if another picker moved the floor meanwhile, its value is as good.
    std::uint64_t expected = floors[best_prio];
    d.vtime_floor[best_prio].compare_exchange_strong(
        expected, floors[best_prio] + static_cast<std::uint64_t>(best_dist),
        std::memory_order_relaxed);
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
  } else if (exclude != kNoGroup && old.present && static_cast<std::int32_t>(old.group) == exclude) {
    desired = kNoHolder;
  } else {
    return {HandoverStatus::kNoCandidate, expected};
  }

  std::uint64_t current = expected;
  if (!d.holder.compare_exchange_strong(current, desired, std::memory_order_acq_rel,
                                        std::memory_order_acquire)) {
    return {HandoverStatus::kRaced, current};
  }
  if (pick.found && !(old.present && old.group == pick.group)) {
    // The new holder's members may be asleep for up to a poll: they get pickup_grace to launch
    // before a waiter may pass them over (which also bounds a picked waiter that died).
    raise_lease(d.groups[pick.group].busy_until_ns, now + t.pickup_grace_ns, now);
    d.handovers.fetch_add(1, std::memory_order_relaxed);
  }
  return {HandoverStatus::kInstalled, desired};
}

}  // namespace xpu::timeslice::detail
