// The per-process side of the scheduler: the launch gate, completion accounting and upkeep.
#include "xpu/timeslice/arbiter.hpp"

#include <algorithm>
#include <atomic>

#include "holder.hpp"
#include "lease.hpp"
#include "xpu/timeslice/cap_budget.hpp"
#include "xpu/timeslice/vtime.hpp"

namespace xpu::timeslice {

using detail::kNoGroup;
using detail::lease_live;
using detail::lease_value;
using detail::raise_lease;
using detail::sane_now;

namespace {

constexpr auto kRelaxed = std::memory_order_relaxed;
constexpr auto kSeqCst = std::memory_order_seq_cst;
constexpr Nanos kMinRetryNs = 1'000;  // a wait always moves time forward
constexpr Nanos kMinLaunchEstimateNs = 100;
constexpr Nanos kMaxLaunchEstimateNs = 10'000'000'000;
constexpr Nanos kRepairPeriodNs = 50'000'000;

Decision go(bool track) noexcept { return {Verdict::kGo, WaitReason::kNone, track, 0, false}; }

Decision wait(WaitReason why, Nanos now, Nanos until) noexcept {
  return {Verdict::kWait, why, true, std::max(until, now + kMinRetryNs)};
}

// The device-wide leases that say who else is around, read once per decision (one cache line).
// A bit mask built in registers: bits 0-2 demand by priority, bits 3-5 presence by priority.
class Signals {
 public:
  Signals(const DeviceSchedule& d, Nanos now) noexcept {
    for (std::uint32_t q = 0; q < kPriorityLevels; ++q) {
      bits_ |= static_cast<unsigned>(lease_live(d.demand_until_ns[q], now)) << q;
      bits_ |= static_cast<unsigned>(lease_live(d.present_until_ns[q], now)) << (q + 3);
    }
  }
  // A group of priority p or above waits for the device.
  bool demand_at_or_above(Priority p) const noexcept { return (bits_ & (7U << at(p)) & 7U) != 0; }
  bool demand_any() const noexcept { return (bits_ & 7U) != 0; }
  // A process of a priority below p is joined.
  bool present_below(Priority p) const noexcept {
    return ((bits_ >> 3) & ((1U << at(p)) - 1U)) != 0;
  }
  // A process of a priority above p is joined.
  bool present_above(Priority p) const noexcept { return ((bits_ >> 3) & (6U << at(p)) & 7U) != 0; }

 private:
  static unsigned at(Priority p) noexcept { return priority_index(p); }
  unsigned bits_ = 0;
};

bool holds(std::uint64_t word, std::uint32_t group) noexcept {
  const HolderWord h = decode_holder(word);
  return h.present && h.group == group;
}

}  // namespace

Arbiter::Arbiter(DeviceSchedule& table, std::uint32_t slot, const Tunables& tunables,
                 Liveness alive) noexcept
    : table_(table),
      slot_(slot),
      t_(sanitized(tunables)),
      alive_(alive),
      enabled_(slot < kMaxSlots) {
  avg_launch_ns_.store(t_.default_launch_ns, kRelaxed);
}

MemberConfig Arbiter::config() const noexcept {
  return decode_config(cfg_.load(std::memory_order_acquire));
}

bool Arbiter::joined() const noexcept { return config().present; }

// ---- join / leave ----

bool Arbiter::join(Nanos now, std::uint32_t group, std::uint32_t share_percent, Mode mode,
                   Priority priority) noexcept {
  if (!enabled_ || group >= kMaxGroups) return false;
  now = sane_now(now);
  if (mode != Mode::kShare && mode != Mode::kCap) mode = Mode::kShare;
  if (priority_index(priority) >= kPriorityLevels) priority = Priority::kNormal;

  SlotSchedule& s = table_.slots[slot_];
  const MemberConfig previous = decode_config(s.config.load(std::memory_order_acquire));
  MemberConfig c;
  c.present = true;
  c.group = group;
  c.share_percent = vtime::clamp_share(share_percent);
  c.mode = mode;
  c.priority = priority;
  c.epoch = previous.epoch + 1;  // a new epoch defeats a reaper that looked at the old config

  // Fresh slot state first; the config word (release) publishes it.
  s.heartbeat_ns.store(now, kRelaxed);
  s.want_until_ns.store(0, kRelaxed);
  s.busy_until_ns.store(0, kRelaxed);
  s.gpu_ns_total.store(0, kRelaxed);
  s.window_index.store(0, kRelaxed);
  s.window_cur_ns.store(0, kRelaxed);
  s.window_prev_ns.store(0, kRelaxed);
  const std::uint64_t word = encode_config(c);
  s.config.store(word, std::memory_order_release);
  MemberConfig gc = c;
  gc.epoch = 0;
  table_.groups[group].config.store(encode_config(gc), std::memory_order_release);

  inflight_.store(0, kRelaxed);
  busy_written_.store(0, kRelaxed);
  inflight_written_.store(0, kRelaxed);
  want_written_.store(0, kRelaxed);
  drain_clear_word_.store(0, kRelaxed);
  heartbeat_written_.store(now, kRelaxed);
  track_until_.store(0, kRelaxed);
  cfg_.store(word, std::memory_order_release);
  refresh_presence(now, c, /*force=*/true);
  return true;
}

void Arbiter::leave(Nanos now) noexcept {
  fast_left_.store(0, kRelaxed);
  const MemberConfig c = decode_config(cfg_.exchange(0, std::memory_order_acq_rel));
  if (!enabled_ || !c.present) return;
  now = sane_now(now);
  SlotSchedule& s = table_.slots[slot_];
  MemberConfig freed;
  freed.epoch = c.epoch;  // keep the epoch: the next join must use a new one
  std::uint64_t expected = encode_config(c);
  s.config.compare_exchange_strong(expected, encode_config(freed), std::memory_order_acq_rel);
  withdraw_want(c.group);
  shorten_busy(c.group, now);
  release_inflight(c.group, now);
  s.busy_until_ns.store(0, kRelaxed);
  inflight_.store(0, kRelaxed);

  // Hand the device on now rather than when the lease runs out, unless a peer of the group stays.
  const std::uint64_t word = table_.holder.load(std::memory_order_acquire);
  if (holds(word, c.group) && !group_has_other_live_member(c.group, now)) {
    detail::hand_over(table_, t_, now, word, static_cast<std::int32_t>(c.group));
  }
}

bool Arbiter::group_has_other_live_member(std::uint32_t group, Nanos now) const noexcept {
  for (std::uint32_t i = 0; i < kMaxSlots; ++i) {
    if (i == slot_) continue;
    const SlotSchedule& s = table_.slots[i];
    const MemberConfig c = decode_config(s.config.load(std::memory_order_acquire));
    if (!c.present || c.group != group) continue;
    const Nanos hb = s.heartbeat_ns.load(kRelaxed);
    if (hb <= now + kMaxLeaseAheadNs && hb > now - t_.stale_after_ns) return true;
  }
  return false;
}

// ---- the launch gate ----

std::uint64_t Arbiter::signals_signature() const noexcept {
  // Every shared word whose change could turn a lone holder's "go" into something else, folded
  // into one value (the holder word is compared on its own).
  std::uint64_t h = 0;
  for (std::uint32_t q = 0; q < kPriorityLevels; ++q) {
    h = h * 0x9E37'79B9'7F4A'7C15ULL +
        static_cast<std::uint64_t>(table_.demand_until_ns[q].load(kRelaxed));
    h = h * 0x9E37'79B9'7F4A'7C15ULL +
        static_cast<std::uint64_t>(table_.present_until_ns[q].load(kRelaxed));
  }
  return h;
}

bool Arbiter::fast_go() noexcept {
  const std::int64_t left = fast_left_.load(kRelaxed);
  if (left <= 0) return false;
  if (table_.holder.load(std::memory_order_acquire) != fast_word_.load(kRelaxed) ||
      signals_signature() != fast_signature_.load(kRelaxed)) {
    fast_left_.store(0, kRelaxed);
    return false;
  }
  // Racy between threads on purpose: a bound and an estimate, not exact counts.
  fast_left_.store(left - 1, kRelaxed);
  fast_taken_.store(fast_taken_.load(kRelaxed) + 1, kRelaxed);
  return true;
}

void Arbiter::arm_fast_path(Nanos now, std::uint64_t word, std::uint64_t signature) noexcept {
  // How many launches may skip the gate: as many as fit in half the idle grace at the recent
  // launch rate, so the busy lease (renewed only on the full path) never lapses while we launch.
  const Nanos last = fast_armed_at_.exchange(now, kRelaxed);
  const std::int64_t since =
      fast_taken_.exchange(0, kRelaxed) + 1;  // launches since the last arming
  std::int64_t budget = 0;
  if (last > 0 && now > last) {
    const Nanos interval = std::max<Nanos>((now - last) / since, 1);
    budget = std::min<std::int64_t>(t_.idle_grace_ns / 2 / interval, kMaxFastLaunches);
  }
  fast_word_.store(word, kRelaxed);
  fast_signature_.store(signature, kRelaxed);
  fast_left_.store(budget, kRelaxed);
}

Decision Arbiter::before_launch(Nanos now) noexcept {
  const MemberConfig cfg = config();
  if (!cfg.present) return go(false);
  now = sane_now(now);
  if (cfg.mode == Mode::kCap) {
    const Nanos ready = cap_ready_at(now, cfg);
    if (ready > now) return cap_wait(now, cfg, ready);
  }
  // Read before deciding, so that a change racing with this decision invalidates the fast path.
  const std::uint64_t signature = signals_signature();
  const std::uint64_t word = table_.holder.load(std::memory_order_acquire);
  if (!holds(word, cfg.group)) return acquire(now, cfg, word);
  const Decision d = as_holder(now, cfg, word);
  if (d.fast_ok && cfg.mode == Mode::kShare) arm_fast_path(now, word, signature);
  return d;
}

Decision Arbiter::as_holder(Nanos now, const MemberConfig& cfg, std::uint64_t word) noexcept {
  // Inside the slice, or past it with nobody of our priority or above waiting: keep going. A lone
  // process therefore never hands over (and never writes the holder word).
  Nanos age = detail::slice_age_ns(decode_holder(word).start_us, now);
  if (age >= t_.slice_ns && Signals(table_, now).demand_at_or_above(cfg.priority)) {
    // Slice over and someone waits: stop submitting, let the pick decide (it may renew us). The
    // next holder waits until our queued work has drained (exclusive hand-over).
    const detail::Handover r =
        detail::hand_over(table_, t_, now, word, kNoGroup, static_cast<std::int32_t>(cfg.group));
    if (!holds(r.word, cfg.group)) return wait_for_holder(now, cfg, r.word);
    word = r.word;
    age = detail::slice_age_ns(decode_holder(word).start_us, now);
  }
  return go_as_holder(now, cfg, word, age);
}

Decision Arbiter::go_as_holder(Nanos now, const MemberConfig& cfg, std::uint64_t word,
                               Nanos slice_age) noexcept {
  // Exclusive hand-over: early in a slice, wait until the previous holder's queued work is done.
  // Two processes' kernels queued at once are time-sliced by the GPU, and since GPU time is
  // measured per process from its own events, both would be charged for the overlap. Checked only
  // while the slice is young, and once seen clear, not again for this holder word: the steady
  // state (and a lone process) pays one compare at most.
  if (slice_age < t_.max_drain_wait_ns && word != drain_clear_word_.load(kRelaxed)) {
    const Nanos left = drain_wait_left(now, cfg, word, slice_age);
    if (left > 0) {
      // Hold on to the device meanwhile: a holder that launches nothing would soon look idle.
      refresh_busy(now, now + t_.idle_grace_ns);
      return wait(WaitReason::kDrain, now, now + std::min(t_.drain_poll_ns, left));
    }
  }
  const Signals sig(table_, now);
  const bool higher = sig.present_above(cfg.priority);
  const bool waiting_peers = sig.demand_at_or_above(cfg.priority);
  // Below a joined higher-priority process, keep only a sliver queued so that its next launch waits
  // little; while peers wait, keep enough queued to cover a hand-over but not much more.
  // (Under share contention two launches are always allowed, so the next kernel is queued while
  // one runs and the GPU does not idle between a completion and the launch it unblocks.)
  Nanos bound = 0;
  std::int64_t min_launches = 1;
  if (higher) {
    bound = t_.low_inflight_ns;
  } else if (waiting_peers) {
    bound = t_.contended_inflight_ns;
    min_launches = 2;
  }
  if (bound > 0 && !inflight_fits(bound, min_launches)) {
    return wait(WaitReason::kInflightBound, now, now + t_.inflight_poll_ns);
  }
  // Track (record completion events) only when our GPU time decides something: someone of our
  // priority or above competes (shares, and the in-flight bound below a higher class).
  const bool contended = higher || waiting_peers;
  if (should_track(now, cfg, contended)) {
    probing_.store(false, kRelaxed);
    refresh_busy(now, now + t_.idle_grace_ns);
    return go(true);
  }
  if (!sig.present_below(cfg.priority) && !sig.demand_any()) {
    refresh_busy(now, now + t_.idle_grace_ns);
    Decision d = go(false);
    d.fast_ok = true;  // nobody else around: nothing to re-evaluate until a shared word changes
    return d;
  }
  return go_above_lower(now);
}

Decision Arbiter::go_above_lower(Nanos now) noexcept {
  // The highest class present, beside lower ones only. Events on every launch would slow exactly
  // the latency-critical process that priorities protect, so it tracks one sampled launch (a
  // probe) per probe_period, learns the GPU time of a launch from those, and keeps a virtual
  // queue: the estimated end of the work it has queued. Its busy lease covers that queue plus the
  // idle grace, so lower processes stay off the GPU until a burst of long kernels has really run.
  // The queue never reaches further than the in-flight lease, and each probe's completion
  // re-anchors it (on_complete): an estimate learned while the GPU was contended (a probe that
  // waited out another context's time-slice) must not hold lower processes off for long.
  // This launch and the fast-path launches since the last decision (fast_go) join the queue.
  const std::int64_t launches = fast_taken_.load(kRelaxed) + 1;
  const Nanos work = launches * avg_launch_ns_.load(kRelaxed);
  const Nanos tail =
      std::min(std::max(queue_end_.load(kRelaxed), now) + work, now + t_.inflight_lease_ns);
  queue_end_.store(tail, kRelaxed);
  since_probe_.store(since_probe_.load(kRelaxed) + launches, kRelaxed);
  refresh_busy(now, tail + t_.idle_grace_ns);
  if (now >= next_probe_.load(kRelaxed) && inflight_.load(kRelaxed) == 0) {
    next_probe_.store(now + t_.probe_period_ns, kRelaxed);
    // A probe only measures: it must not make us look busy (or draining) until it is reported.
    probing_.store(true, kRelaxed);
    since_probe_.store(0, kRelaxed);
    fast_taken_.store(0, kRelaxed);  // counted above; no fast path is armed after a probe
    return go(true);
  }
  // For status only: untracked launches count at the learned average (vtime is not charged; no
  // one of this class competes).
  record_slot_time(now, static_cast<std::uint64_t>(work));
  Decision d = go(false);
  d.fast_ok = true;  // the next launches change nothing above but the queue: counted next time
  return d;
}

void Arbiter::anchor_queue(Nanos now) noexcept {
  // A probe was reported done at `now`: the work launched before it on its stream has run, so
  // what may still be queued is at most the launches made since. (Other streams' work is covered
  // by the estimate only; a later probe re-anchors again.)
  // (The queue never reaches past the in-flight lease, so neither does the bound: no overflow.)
  const Nanos avg = std::max<Nanos>(avg_launch_ns_.load(kRelaxed), 1);
  const std::int64_t since = since_probe_.load(kRelaxed);
  const Nanos bound =
      now + (since >= t_.inflight_lease_ns / avg ? t_.inflight_lease_ns : since * avg);
  if (queue_end_.load(kRelaxed) <= bound) return;
  queue_end_.store(bound, kRelaxed);
  const MemberConfig cfg = config();
  if (cfg.present) shorten_busy(cfg.group, bound + t_.idle_grace_ns);
}

Decision Arbiter::acquire(Nanos now, const MemberConfig& cfg, std::uint64_t word) noexcept {
  catch_up_if_fresh(now, cfg);
  // Bounded: every failed round means another process changed the holder word, i.e. progress.
  for (int round = 0; round < 4; ++round) {
    if (holds(word, cfg.group)) break;
    if (!may_take_over(now, cfg, word)) break;
    const detail::Handover r =
        detail::hand_over(table_, t_, now, word, kNoGroup, static_cast<std::int32_t>(cfg.group));
    word = r.word;
    if (r.status != detail::HandoverStatus::kRaced) break;
  }
  if (holds(word, cfg.group)) {
    // We hold it now: a stale "waiting" must not get us picked again later.
    withdraw_want(cfg.group);
    return go_as_holder(now, cfg, word, detail::slice_age_ns(decode_holder(word).start_us, now));
  }
  // We must wait: only now publish our demand (a process that gets the device at once never
  // does, so a lone process never looks contended to itself).
  announce_want(now, cfg);
  return wait_for_holder(now, cfg, word);
}

Nanos Arbiter::drain_wait_left(Nanos now, const MemberConfig& cfg, std::uint64_t word,
                               Nanos slice_age) noexcept {
  const std::uint64_t rec = table_.previous_holder.load(std::memory_order_acquire);
  // Not (yet) written for this slice (the installer is between its CAS and this record, or lost a
  // race): nothing to wait for now, but look again at the next launch.
  if (!previous_matches(rec, word)) return 0;
  const PreviousHolder prev = decode_previous(rec, word);
  // Never wait for our own group's work; otherwise wait while its in-flight lease lives (it is
  // pulled in at its last completion, and a dead process's runs out within inflight_lease_ns).
  if (prev.present && prev.group != cfg.group &&
      lease_live(table_.groups[prev.group].inflight_until_ns, now)) {
    const MemberConfig older = decode_group_config(
        table_.groups[prev.group].config.load(std::memory_order_acquire), prev.group);
    const Nanos limit = drain_limit(cfg.priority, older.present ? older.priority : cfg.priority);
    if (slice_age < limit) return limit - slice_age;
  }
  drain_clear_word_.store(word, kRelaxed);
  return 0;
}

Nanos Arbiter::drain_limit(Priority newer, Priority older) const noexcept {
  // A holder that preempted a lower priority need not wait: the lower group keeps only a sliver
  // queued (low_inflight_ns), the GPU runs that sliver before our first kernel either way, and
  // not blocking our launch thread meanwhile lets a launch-bound process (batch-1 inference)
  // queue its next kernels while the sliver runs, instead of after a drain poll.
  return newer > older ? t_.preempt_drain_wait_ns : t_.max_drain_wait_ns;
}

bool Arbiter::may_take_over(Nanos now, const MemberConfig& cfg, std::uint64_t word) const noexcept {
  const HolderWord h = decode_holder(word);
  if (!h.present) return true;  // nobody (or a corrupt word)
  const GroupSchedule& g = table_.groups[h.group];
  const MemberConfig hc = decode_group_config(g.config.load(std::memory_order_acquire), h.group);
  if (!hc.present) return true;                 // held by an unconfigured group
  if (cfg.priority > hc.priority) return true;  // preempt at our launch boundary
  if (detail::slice_age_ns(h.start_us, now) >= t_.slice_ns) return true;  // slice over
  if (!lease_live(g.busy_until_ns, now)) return true;  // holder idle, dead, or never came
  return detail::group_throttled(g, hc, t_, now);      // holder out of cap budget
}

Decision Arbiter::wait_for_holder(Nanos now, const MemberConfig& cfg,
                                  std::uint64_t word) const noexcept {
  // Sleep at most a poll; wake exactly at the end of the slice when that is sooner, so that the
  // next holder is installed at once (the old holder then stops submitting and its queued work
  // drains before the new one starts).
  Nanos until = now + t_.wait_poll_ns;
  const HolderWord h = decode_holder(word);
  if (h.present) {
    const Nanos left = t_.slice_ns - detail::slice_age_ns(h.start_us, now);
    if (left > 0) until = std::min(until, now + left);
  }
  // The next holder waits for our queued work to drain: report our completions as they come (the
  // watcher may be asleep), so that it can start as soon as the last one is done.
  if (inflight_.load(kRelaxed) > 0 && drain_awaited(now, cfg, word)) {
    return wait(WaitReason::kDrain, now, std::min(until, now + t_.drain_poll_ns));
  }
  return wait(WaitReason::kOtherHolder, now, until);
}

bool Arbiter::inflight_fits(Nanos bound, std::int64_t min_launches) const noexcept {
  const std::int64_t n = inflight_.load(kRelaxed);
  if (n < min_launches) return true;  // however long they are
  if (n >= static_cast<std::int64_t>(t_.max_inflight_launches)) return false;
  return (n + 1) * avg_launch_ns_.load(kRelaxed) <= bound;
}

bool Arbiter::should_track(Nanos now, const MemberConfig& cfg, bool contended) noexcept {
  // Tracking lingers after contention so that in-flight counts stay whole across short lulls.
  if (contended) {
    const Nanos until = now + t_.track_linger_ns;
    if (track_until_.load(kRelaxed) < until - t_.track_linger_ns / 4) {
      track_until_.store(until, kRelaxed);
    }
    return true;
  }
  return cfg.mode == Mode::kCap || track_until_.load(kRelaxed) > now;
}

// ---- cap mode ----

Nanos Arbiter::cap_ready_at(Nanos now, const MemberConfig& cfg) const noexcept {
  const std::int64_t n = std::max<std::int64_t>(inflight_.load(kRelaxed), 0);
  const auto inflight_gpu =
      static_cast<std::uint64_t>(n) * static_cast<std::uint64_t>(avg_launch_ns_.load(kRelaxed));
  const Nanos tat = table_.groups[cfg.group].cap_tat_ns.load(kRelaxed);
  return cap::ready_at(tat, now, cap::cost(inflight_gpu, cfg.share_percent), t_.cap_params());
}

Decision Arbiter::cap_wait(Nanos now, const MemberConfig& cfg, Nanos ready) noexcept {
  // Out of budget while holding the device and others wait: give it away instead of sitting on it.
  std::uint64_t word = table_.holder.load(std::memory_order_acquire);
  if (holds(word, cfg.group) && Signals(table_, now).demand_any()) {
    word = detail::hand_over(table_, t_, now, word, static_cast<std::int32_t>(cfg.group)).word;
  }
  // The next holder waits for our queued work: report completions at the drain's pace.
  Nanos poll = t_.cap_poll_ns;
  if (inflight_.load(kRelaxed) > 0 && drain_awaited(now, cfg, word)) poll = t_.drain_poll_ns;
  return wait(WaitReason::kCapBudget, now, std::min(ready, now + poll));
}

// ---- leases ----

void Arbiter::announce_want(Nanos now, const MemberConfig& cfg) noexcept {
  const Nanos until = now + t_.want_lease_ns;
  if (!detail::lease_needs_renewal(want_written_.load(kRelaxed), until, now)) return;
  repair(cfg);  // a waiter whose group config is garbage would never be picked
  raise_lease(table_.groups[cfg.group].want_until_ns, until, now);
  table_.slots[slot_].want_until_ns.store(until, kRelaxed);
  raise_lease(table_.demand_until_ns[priority_index(cfg.priority)], until, now);
  want_written_.store(until, kRelaxed);
}

void Arbiter::withdraw_want(std::uint32_t group) noexcept {
  // Only the lease we wrote: a peer of the group may have renewed it since (then it stays).
  Nanos mine = want_written_.load(kRelaxed);
  if (mine == 0) return;
  table_.groups[group % kMaxGroups].want_until_ns.compare_exchange_strong(mine, 0, kRelaxed);
  table_.slots[slot_].want_until_ns.store(0, kRelaxed);
  want_written_.store(0, kRelaxed);
}

void Arbiter::catch_up_if_fresh(Nanos now, const MemberConfig& cfg) noexcept {
  // The group was neither busy nor waiting for fresh_gap: it is (re)entering the competition.
  const GroupSchedule& g = table_.groups[cfg.group];
  const Nanos last_active = std::max(lease_value(g.want_until_ns.load(kRelaxed), now),
                                     lease_value(g.busy_until_ns.load(kRelaxed), now));
  if (last_active < now - t_.fresh_gap_ns) catch_up_vtime(now, cfg);
}

void Arbiter::catch_up_vtime(Nanos now, const MemberConfig& cfg) noexcept {
  // Returning from idle: lift our vtime to the least vtime among groups already competing at our
  // priority, so idle time earns no credit (else a returning group would monopolise the device).
  bool found = false;
  std::uint64_t least = 0;
  for (std::uint32_t gi = 0; gi < kMaxGroups; ++gi) {
    if (gi == cfg.group) continue;
    const GroupSchedule& g = table_.groups[gi];
    const MemberConfig c = decode_group_config(g.config.load(std::memory_order_acquire), gi);
    if (!c.present || c.priority != cfg.priority) continue;
    if (!lease_live(g.want_until_ns, now) && !lease_live(g.busy_until_ns, now)) continue;
    const std::uint64_t vt = g.vtime.load(kRelaxed);
    if (!found || vtime::distance(vt, least) < 0) least = vt;
    found = true;
  }
  if (!found) return;
  std::atomic<std::uint64_t>& mine = table_.groups[cfg.group].vtime;
  std::uint64_t cur = mine.load(kRelaxed);
  while (vtime::distance(least, cur) > 0 && !mine.compare_exchange_weak(cur, least, kRelaxed)) {
  }
}

void Arbiter::refresh_busy(Nanos now, Nanos until) noexcept {
  if (!detail::lease_needs_renewal(busy_written_.load(kRelaxed), until, now)) return;
  const MemberConfig cfg = config();
  if (!cfg.present) return;
  raise_lease(table_.groups[cfg.group].busy_until_ns, until, now);
  table_.slots[slot_].busy_until_ns.store(until, kRelaxed);
  busy_written_.store(until, kRelaxed);
}

void Arbiter::shorten_busy(std::uint32_t group, Nanos until) noexcept {
  // Our work is done: pull the group's busy lease in so waiters need not sit out the whole
  // in-flight lease. Only if the lease is still the one we wrote (a peer may have extended it).
  Nanos mine = busy_written_.load(kRelaxed);
  if (mine <= until) return;
  table_.groups[group % kMaxGroups].busy_until_ns.compare_exchange_strong(mine, until, kRelaxed);
  table_.slots[slot_].busy_until_ns.store(until, kRelaxed);
  busy_written_.store(until, kRelaxed);
}

void Arbiter::raise_inflight(Nanos now, std::uint32_t group) noexcept {
  // Rate-limited like busy: a launch loop writes the group's line about once per lease / 4.
  const Nanos until = now + t_.inflight_lease_ns;
  if (!detail::lease_needs_renewal(inflight_written_.load(kSeqCst), until, now)) return;
  raise_lease(table_.groups[group % kMaxGroups].inflight_until_ns, until, now);
  inflight_written_.store(until, kRelaxed);
}

void Arbiter::release_inflight(std::uint32_t group, Nanos now) noexcept {
  // Nothing of ours is queued any more: whoever waits for our drain may start now. Only if the
  // lease is still the one we wrote (a peer of the group with work queued may have extended it).
  Nanos mine = inflight_written_.load(kRelaxed);
  if (mine <= now) return;
  table_.groups[group % kMaxGroups].inflight_until_ns.compare_exchange_strong(mine, now, kRelaxed);
  inflight_written_.store(now, kSeqCst);
}

void Arbiter::refresh_presence(Nanos now, const MemberConfig& cfg, bool force) noexcept {
  const Nanos until = now + t_.presence_lease_ns;
  if (!force && !detail::lease_needs_renewal(presence_written_.load(kRelaxed), until, now)) return;
  raise_lease(table_.present_until_ns[priority_index(cfg.priority)], until, now);
  presence_written_.store(until, kRelaxed);
}

// ---- completions ----

void Arbiter::on_launch(Nanos now, std::uint32_t launches) noexcept {
  if (!enabled_ || launches == 0) return;
  now = sane_now(now);
  if (inflight_.fetch_add(launches, kSeqCst) <= 0) progress_ns_.store(now, kRelaxed);
  const MemberConfig cfg = config();
  if (!cfg.present || probing_.load(kRelaxed)) return;
  // Work queued on the GPU keeps the group busy until its last completion is reported, whether or
  // not the watcher is awake to renew the lease (a holder that sleeps in a stream synchronize must
  // not look idle while its kernels still run).
  refresh_busy(now, now + t_.inflight_lease_ns);
  raise_inflight(now, cfg.group);
}

void Arbiter::on_complete(Nanos now, std::uint32_t launches, std::uint64_t gpu_ns) noexcept {
  if (!enabled_) return;
  now = sane_now(now);
  gpu_ns = std::min(gpu_ns, vtime::kMaxChargeNs);

  // In flight, clamped at zero (completions of launches counted before a re-join are tolerated).
  std::int64_t cur = inflight_.load(kRelaxed);
  std::int64_t left = 0;
  do {
    left = std::max<std::int64_t>(cur - launches, 0);
  } while (!inflight_.compare_exchange_weak(cur, left, kRelaxed));
  progress_ns_.store(now, kRelaxed);

  if (launches > 0 && gpu_ns > 0) {
    // Moving average of GPU time per launch, for in-flight estimates (weight 1/4: adapts in a few
    // completions, yet one odd kernel does not swing it).
    const auto per = static_cast<Nanos>(gpu_ns / launches);
    const Nanos avg = avg_launch_ns_.load(kRelaxed);
    avg_launch_ns_.store(
        std::clamp(avg + (per - avg) / 4, kMinLaunchEstimateNs, kMaxLaunchEstimateNs), kRelaxed);
  }
  const MemberConfig cfg = config();
  if (!cfg.present) return;
  if (gpu_ns > 0) charge(now, cfg, gpu_ns);
  if (left == 0 && probing_.exchange(false, kRelaxed)) {  // a probe: it claimed no lease
    anchor_queue(now);
    return;
  }
  if (left == 0) {
    shorten_busy(cfg.group, now + t_.idle_grace_ns);
    release_inflight(cfg.group, now);
    // A launch thread may have counted a new launch meanwhile and seen our old (long) lease as
    // still written: claim the lease again for it. (Sequentially consistent on both sides, so one
    // of the two always sees the other.)
    if (inflight_.load(kSeqCst) > 0) raise_inflight(now, cfg.group);
  }
}

void Arbiter::charge(Nanos now, const MemberConfig& cfg, std::uint64_t gpu_ns) noexcept {
  GroupSchedule& g = table_.groups[cfg.group];
  g.vtime.fetch_add(vtime::weighted(gpu_ns, cfg.share_percent), kRelaxed);
  g.gpu_ns_total.fetch_add(gpu_ns, kRelaxed);
  record_slot_time(now, gpu_ns);
  if (cfg.mode == Mode::kCap) {
    const cap::Params p = t_.cap_params();
    const Nanos cost = cap::cost(gpu_ns, cfg.share_percent);
    Nanos tat = g.cap_tat_ns.load(kRelaxed);
    while (!g.cap_tat_ns.compare_exchange_weak(tat, cap::charged(tat, now, cost, p), kRelaxed)) {
    }
  }
}

void Arbiter::record_slot_time(Nanos now, std::uint64_t gpu_ns) noexcept {
  // The slot's total, and two windows written only by this process: status reads "GPU time over
  // the last 1-2 windows".
  SlotSchedule& s = table_.slots[slot_];
  s.gpu_ns_total.fetch_add(gpu_ns, kRelaxed);
  const auto index = static_cast<std::uint64_t>(now / t_.share_window_ns);
  const std::uint64_t stored = s.window_index.load(kRelaxed);
  if (index > stored) {
    s.window_prev_ns.store(index == stored + 1 ? s.window_cur_ns.load(kRelaxed) : 0, kRelaxed);
    s.window_cur_ns.store(0, kRelaxed);
    s.window_index.store(index, kRelaxed);
  }
  s.window_cur_ns.fetch_add(gpu_ns, kRelaxed);
}

// ---- upkeep ----

Nanos Arbiter::tick(Nanos now) noexcept {
  now = sane_now(now);
  const MemberConfig cfg = config();
  if (!enabled_ || !cfg.present) return now + t_.idle_tick_ns;

  const Nanos hb = heartbeat_written_.load(kRelaxed);
  if (now - hb >= t_.heartbeat_period_ns || hb > now) {
    table_.slots[slot_].heartbeat_ns.store(now, kRelaxed);
    heartbeat_written_.store(now, kRelaxed);
  }
  refresh_presence(now, cfg, /*force=*/false);
  if (inflight_.load(kRelaxed) > 0 && now - progress_ns_.load(kRelaxed) > t_.inflight_stuck_ns) {
    // Nothing completed for very long: the adapter lost completion reports (or one kernel runs
    // that long). Forget the count rather than let in-flight bounds block this process forever,
    // and stop claiming work in flight (nobody need wait for a drain that is not reported).
    inflight_.store(0, kRelaxed);
    release_inflight(cfg.group, now);
  }
  const bool inflight = inflight_.load(kRelaxed) > 0;
  // Work still queued on the GPU keeps the group busy; a killed process stops renewing, so its
  // lease runs out within inflight_lease_ns and waiters pass it over.
  if (inflight && !probing_.load(kRelaxed)) {
    refresh_busy(now, now + t_.inflight_lease_ns);
    // The same for the in-flight lease that a next holder waits on. A peer of the group whose own
    // work is done pulls it in: then claim it again (at most a tick late).
    const Nanos shared =
        detail::lease_value(table_.groups[cfg.group].inflight_until_ns.load(kRelaxed), now);
    if (shared < inflight_written_.load(kRelaxed)) inflight_written_.store(0, kRelaxed);
    raise_inflight(now, cfg.group);
  }

  if (now >= next_repair_.load(kRelaxed)) {
    next_repair_.store(now + kRepairPeriodNs, kRelaxed);
    repair(cfg);
  }
  if (now >= next_reap_.load(kRelaxed)) {
    // Stagger reapers by slot so that they do not all scan at once.
    next_reap_.store(now + t_.reap_period_ns + static_cast<Nanos>(slot_ % 16) * 1'000'000,
                     kRelaxed);
    reap(now);
  }
  // While the next holder waits for our queued work to drain, notice our last completion fast:
  // the GPU idles from then until we report it. This polls the events every drain_tick_ns, but
  // only during a drain: a few ms per hand-over away from this process.
  const std::uint64_t word = table_.holder.load(std::memory_order_acquire);
  if (inflight && drain_awaited(now, cfg, word)) return now + t_.drain_tick_ns;
  const bool waiting = want_written_.load(kRelaxed) > now;
  // While contended (tracking), tracked launches may come at any moment, and the watcher must be
  // awake to report their completions: a hand-over waits for them. A lone process does not track.
  const bool tracking = track_until_.load(kRelaxed) > now;
  return now + (inflight || waiting || tracking ? t_.active_tick_ns : t_.idle_tick_ns);
}

bool Arbiter::drain_awaited(Nanos now, const MemberConfig& cfg, std::uint64_t word) const noexcept {
  if (t_.max_drain_wait_ns == 0) return false;
  const HolderWord h = decode_holder(word);
  if (h.present) {
    if (h.group == cfg.group) return false;  // we hold it
    const MemberConfig hc =
        decode_group_config(table_.groups[h.group].config.load(std::memory_order_acquire), h.group);
    const Priority holder_priority = hc.present ? hc.priority : cfg.priority;
    // The holder no longer waits for anyone (or, having preempted us, never did).
    if (detail::slice_age_ns(h.start_us, now) >= drain_limit(holder_priority, cfg.priority)) {
      return false;
    }
  }
  // Also while nobody holds, if we were the last: whoever installs itself next waits for us.
  const PreviousHolder prev = decode_previous(table_.previous_holder.load(kRelaxed), word);
  return prev.present && prev.group == cfg.group;
}

void Arbiter::repair(const MemberConfig& cfg) noexcept {
  // This process's copy of its configuration is authoritative: restore a damaged slot word, and a
  // group word that no longer decodes (a valid word of another member is left alone).
  const std::uint64_t mine = cfg_.load(std::memory_order_acquire);
  SlotSchedule& s = table_.slots[slot_];
  if (s.config.load(std::memory_order_acquire) != mine)
    s.config.store(mine, std::memory_order_release);
  GroupSchedule& g = table_.groups[cfg.group];
  if (!decode_group_config(g.config.load(std::memory_order_acquire), cfg.group).present) {
    MemberConfig gc = cfg;
    gc.epoch = 0;
    g.config.store(encode_config(gc), std::memory_order_release);
  }
}

void Arbiter::reap(Nanos now) noexcept {
  // Free the slots of dead processes. Leases already keep the dead from blocking anyone; this
  // clears them from status and from group membership. Liveness may cost a system call, so it is
  // asked only about slots whose heartbeat is stale.
  for (std::uint32_t i = 0; i < kMaxSlots; ++i) {
    if (i == slot_) continue;
    SlotSchedule& s = table_.slots[i];
    std::uint64_t word = s.config.load(std::memory_order_acquire);
    const MemberConfig c = decode_config(word);
    if ((word & 0xFFFF'FFFFULL) == 0) continue;  // free: only an epoch (or nothing) is left
    const Nanos hb = s.heartbeat_ns.load(kRelaxed);
    const bool fresh = hb <= now + kMaxLeaseAheadNs && hb > now - t_.stale_after_ns;
    if (fresh || alive_(i)) continue;
    MemberConfig freed;
    freed.epoch = c.epoch;
    if (s.config.compare_exchange_strong(word, encode_config(freed), std::memory_order_acq_rel)) {
      s.want_until_ns.store(0, kRelaxed);
      s.busy_until_ns.store(0, kRelaxed);
    }
  }
}

}  // namespace xpu::timeslice
