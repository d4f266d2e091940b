#include <algorithm>
#include <charconv>
#include <string>
#include <string_view>

#include "xpu/timeslice/tunables.hpp"

namespace xpu::timeslice {

namespace {
constexpr Nanos kUs = 1'000;
constexpr Nanos kMs = 1'000'000;
constexpr Nanos kS = 1'000'000'000;
}  // namespace

Tunables sanitized(const Tunables& in) noexcept {
  // Leases must stay below kMaxLeaseAheadNs (longer ones would read as garbage) and above the
  // periods that renew them; polls must be positive so that waits make progress.
  Tunables t = in;
  t.slice_ns = std::clamp(t.slice_ns, 1 * kMs, 1 * kS);
  t.idle_grace_ns = std::clamp(t.idle_grace_ns, 50 * kUs, 500 * kMs);
  t.active_tick_ns = std::clamp(t.active_tick_ns, 50 * kUs, 100 * kMs);
  t.idle_tick_ns = std::clamp(t.idle_tick_ns, t.active_tick_ns, 400 * kMs);
  t.inflight_lease_ns = std::clamp(t.inflight_lease_ns, 2 * t.active_tick_ns, kMaxLeaseAheadNs / 2);
  t.pickup_grace_ns = std::clamp(t.pickup_grace_ns, 100 * kUs, kMaxLeaseAheadNs / 2);
  t.wait_poll_ns = std::clamp(t.wait_poll_ns, 10 * kUs, 100 * kMs);
  t.want_lease_ns = std::clamp(t.want_lease_ns, 2 * t.wait_poll_ns, kMaxLeaseAheadNs / 2);
  t.presence_lease_ns = std::clamp(t.presence_lease_ns, 2 * t.idle_tick_ns, kMaxLeaseAheadNs / 2);
  t.inflight_poll_ns = std::clamp(t.inflight_poll_ns, 1 * kUs, 100 * kMs);
  t.drain_poll_ns = std::clamp(t.drain_poll_ns, 1 * kUs, 100 * kMs);
  // 0 means "no exclusive hand-over"; anything else covers at least one poll.
  if (t.max_drain_wait_ns != 0) {
    t.max_drain_wait_ns = std::clamp(t.max_drain_wait_ns, t.drain_poll_ns, 100 * kMs);
  }
  t.drain_tick_ns = std::clamp(t.drain_tick_ns, 1 * kUs, t.active_tick_ns);
  t.preempt_drain_wait_ns = std::clamp(t.preempt_drain_wait_ns, Nanos{0}, t.max_drain_wait_ns);
  t.contended_inflight_ns = std::clamp(t.contended_inflight_ns, 0 * kUs, 10 * kS);
  t.low_inflight_ns = std::clamp(t.low_inflight_ns, 0 * kUs, 10 * kS);
  t.max_inflight_launches = std::clamp(t.max_inflight_launches, 1U, 1U << 20);
  t.default_launch_ns = std::clamp(t.default_launch_ns, 100 * Nanos{1}, 1 * kS);
  t.inflight_stuck_ns = std::clamp(t.inflight_stuck_ns, 100 * kMs, 3600 * kS);
  t.cap_ahead_ns = std::clamp(t.cap_ahead_ns, 0 * kMs, 10 * kS);
  t.cap_burst_ns = std::clamp(t.cap_burst_ns, 0 * kMs, 10 * kS);
  t.cap_max_debt_ns = std::clamp(t.cap_max_debt_ns, t.cap_ahead_ns + 1 * kMs, 3600 * kS);
  t.cap_poll_ns = std::clamp(t.cap_poll_ns, 10 * kUs, 100 * kMs);
  t.fresh_gap_ns = std::clamp(t.fresh_gap_ns, 1 * kMs, 10 * kS);
  t.vtime_max_lag_ns = std::clamp(t.vtime_max_lag_ns, 10 * kMs, 3600 * kS);
  t.vtime_max_lead_gpu_ns = std::clamp(t.vtime_max_lead_gpu_ns, 10 * kMs, 3600 * kS);
  t.track_linger_ns = std::clamp(t.track_linger_ns, 0 * kMs, 3600 * kS);
  t.probe_period_ns = std::clamp(t.probe_period_ns, 100 * kUs, 10 * kS);
  t.heartbeat_period_ns = std::clamp(t.heartbeat_period_ns, 0 * kMs, t.idle_tick_ns);
  t.stale_after_ns = std::clamp(t.stale_after_ns, 2 * t.idle_tick_ns, 60 * kS);
  t.reap_period_ns = std::clamp(t.reap_period_ns, 1 * kMs, 60 * kS);
  t.share_window_ns = std::clamp(t.share_window_ns, 10 * kMs, 3600 * kS);
  return t;
}

namespace {

struct Field {
  std::string_view name;
  Nanos Tunables::*ns;  // a duration, or
  std::uint32_t Tunables::*count;
};

// Every tunable, by its public name: the one list apply_overrides and override_names read.
constexpr Field kFields[] = {
    {"slice", &Tunables::slice_ns, nullptr},
    {"idle_grace", &Tunables::idle_grace_ns, nullptr},
    {"inflight_lease", &Tunables::inflight_lease_ns, nullptr},
    {"pickup_grace", &Tunables::pickup_grace_ns, nullptr},
    {"want_lease", &Tunables::want_lease_ns, nullptr},
    {"presence_lease", &Tunables::presence_lease_ns, nullptr},
    {"wait_poll", &Tunables::wait_poll_ns, nullptr},
    {"inflight_poll", &Tunables::inflight_poll_ns, nullptr},
    {"max_drain_wait", &Tunables::max_drain_wait_ns, nullptr},
    {"drain_poll", &Tunables::drain_poll_ns, nullptr},
    {"drain_tick", &Tunables::drain_tick_ns, nullptr},
    {"preempt_drain_wait", &Tunables::preempt_drain_wait_ns, nullptr},
    {"contended_inflight", &Tunables::contended_inflight_ns, nullptr},
    {"low_inflight", &Tunables::low_inflight_ns, nullptr},
    {"max_inflight_launches", nullptr, &Tunables::max_inflight_launches},
    {"default_launch", &Tunables::default_launch_ns, nullptr},
    {"inflight_stuck", &Tunables::inflight_stuck_ns, nullptr},
    {"cap_ahead", &Tunables::cap_ahead_ns, nullptr},
    {"cap_burst", &Tunables::cap_burst_ns, nullptr},
    {"cap_max_debt", &Tunables::cap_max_debt_ns, nullptr},
    {"cap_poll", &Tunables::cap_poll_ns, nullptr},
    {"fresh_gap", &Tunables::fresh_gap_ns, nullptr},
    {"vtime_max_lag", &Tunables::vtime_max_lag_ns, nullptr},
    {"vtime_max_lead_gpu", &Tunables::vtime_max_lead_gpu_ns, nullptr},
    {"track_linger", &Tunables::track_linger_ns, nullptr},
    {"probe_period", &Tunables::probe_period_ns, nullptr},
    {"active_tick", &Tunables::active_tick_ns, nullptr},
    {"idle_tick", &Tunables::idle_tick_ns, nullptr},
    {"heartbeat_period", &Tunables::heartbeat_period_ns, nullptr},
    {"stale_after", &Tunables::stale_after_ns, nullptr},
    {"reap_period", &Tunables::reap_period_ns, nullptr},
    {"share_window", &Tunables::share_window_ns, nullptr},
};

// "250us" -> 250000; nullopt-like -1 on anything else (no sign, no fraction, no overflow).
Nanos parse_duration(std::string_view v) {
  constexpr std::pair<std::string_view, Nanos> kUnits[] = {
      {"ns", 1}, {"us", kUs}, {"ms", kMs}, {"s", kS}};
  for (const auto& [suffix, scale] : kUnits) {
    if (v.size() <= suffix.size() || v.substr(v.size() - suffix.size()) != suffix) continue;
    const std::string_view digits = v.substr(0, v.size() - suffix.size());
    if (suffix == "s" && (digits.back() < '0' || digits.back() > '9')) continue;  // "ms", "us"
    Nanos n = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    if (ec != std::errc() || end != digits.data() + digits.size() || n < 0 || n > 3600 * kS / scale)
      return -1;
    return n * scale;
  }
  return -1;
}

}  // namespace

std::string override_names() {
  std::string out;
  for (const Field& f : kFields) out += (out.empty() ? "" : ", ") + std::string(f.name);
  return out;
}

std::string apply_overrides(Tunables& t, std::string_view text) {
  if (text.empty()) return "";
  while (true) {
    const auto comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    const auto eq = item.find('=');
    if (eq == std::string_view::npos) return "'" + std::string(item) + "' is not name=value";
    const std::string_view name = item.substr(0, eq), value = item.substr(eq + 1);
    const Field* field = nullptr;
    for (const Field& f : kFields)
      if (f.name == name) field = &f;
    if (field == nullptr) return "unknown name '" + std::string(name) + "'";
    if (field->ns != nullptr) {
      const Nanos n = parse_duration(value);
      if (n < 0)
        return "'" + std::string(value) + "' for " + std::string(name) +
               " is not a duration (an integer with ns, us, ms or s, up to 3600s)";
      t.*(field->ns) = n;
    } else {
      std::uint32_t n = 0;
      const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || end != value.data() + value.size() || value.empty())
        return "'" + std::string(value) + "' for " + std::string(name) + " is not a count";
      t.*(field->count) = n;
    }
    if (comma == std::string_view::npos) return "";
    text = text.substr(comma + 1);
  }
}

}  // namespace xpu::timeslice
