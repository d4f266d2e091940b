// `xpu-run status`: a best-effort snapshot (fields are read one by one, not as a transaction).
#include "xpu/timeslice/status.hpp"

#include <algorithm>
#include <atomic>

#include "holder.hpp"
#include "lease.hpp"

namespace xpu::timeslice {

DeviceStatus read_status(const DeviceSchedule& table, Nanos now, const Tunables& tunables) {
  constexpr auto kRelaxed = std::memory_order_relaxed;
  const Tunables t = sanitized(tunables);
  now = detail::sane_now(now);
  DeviceStatus out;
  const HolderWord h = decode_holder(table.holder.load(std::memory_order_acquire));
  out.has_holder = h.present;
  out.holder_group = h.group;
  out.slice_age_ns = h.present ? detail::slice_age_ns(h.start_us, now) : 0;
  out.handovers = table.handovers.load(kRelaxed);

  // GPU time of the current and previous share windows, by slot.
  const auto window = static_cast<std::uint64_t>(now / t.share_window_ns);
  const Nanos span = now - static_cast<Nanos>(window) * t.share_window_ns + t.share_window_ns;
  double total = 0.0;
  std::vector<double> recent;
  for (std::uint32_t i = 0; i < kMaxSlots; ++i) {
    const SlotSchedule& s = table.slots[i];
    const MemberConfig c = decode_config(s.config.load(std::memory_order_acquire));
    if (!c.present) continue;
    SlotStatus row;
    row.slot = i;
    row.group = c.group;
    row.share_percent = c.share_percent;
    row.mode = c.mode;
    row.priority = c.priority;
    row.holder = h.present && h.group == c.group;
    row.waiting = detail::lease_live(s.want_until_ns, now) && !row.holder;
    row.busy = detail::lease_live(s.busy_until_ns, now);
    row.gpu_ns_total = s.gpu_ns_total.load(kRelaxed);
    row.heartbeat_age_ns = std::max<Nanos>(now - std::min(now, s.heartbeat_ns.load(kRelaxed)), 0);
    const std::uint64_t index = s.window_index.load(kRelaxed);
    double gpu = 0.0;
    if (index == window) {
      gpu = static_cast<double>(s.window_cur_ns.load(kRelaxed)) +
            static_cast<double>(s.window_prev_ns.load(kRelaxed));
    } else if (index + 1 == window) {
      gpu = static_cast<double>(s.window_cur_ns.load(kRelaxed));
    }
    recent.push_back(gpu);
    total += gpu;
    row.gpu_utilization = std::min(gpu / static_cast<double>(span), 1.0);
    out.slots.push_back(row);
  }
  for (std::size_t i = 0; i < out.slots.size(); ++i) {
    out.slots[i].delivered_share = total > 0.0 ? recent[i] / total : 0.0;
  }
  return out;
}

}  // namespace xpu::timeslice
