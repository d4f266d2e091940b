#include "status.hpp"

#include <fmt/format.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "xpu/common/settings.hpp"
#include "xpu/common/units.hpp"
#include "xpu/common/uuid.hpp"
#include "xpu/coordinator/segment.hpp"
#include "xpu/memquota/ledger.hpp"
#include "xpu/timeslice/status.hpp"

namespace xpu::run {
namespace {

using coordinator::EntryState;

constexpr auto kReady = static_cast<std::uint32_t>(EntryState::ready);

// A NUL-terminated name in a fixed array that another process wrote: never read past the array.
std::string bounded(const char* text, std::size_t capacity) {
  return std::string(text, ::strnlen(text, capacity));
}

// Length of the valid UTF-8 sequence at s[i], or 0 if it is not one.
std::size_t utf8_length(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  std::size_t len = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    if (c == 0xE0) lo = 0xA0;  // overlong
    if (c == 0xED) hi = 0x9F;  // surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    if (c == 0xF0) lo = 0x90;  // overlong
    if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  if (i + len > s.size() || b(1) < lo || b(1) > hi) return 0;
  for (std::size_t k = 2; k < len; ++k)
    if (b(k) < 0x80 || b(k) > 0xBF) return 0;
  return len;
}

// For the terminal: a corrupt or hostile name must not emit escape sequences. C0 and C1 control
// characters, DEL and bytes that are not valid UTF-8 (a lone 0x9b is CSI to some terminals)
// become '?'; valid UTF-8 text is kept.
std::string printable(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const auto u = static_cast<unsigned char>(s[i]);
    if (u < 0x80) {
      out += u < 0x20 || u == 0x7f ? '?' : static_cast<char>(u);
      ++i;
      continue;
    }
    const std::size_t len = utf8_length(s, i);
    const bool c1 = len == 2 && u == 0xC2 && static_cast<unsigned char>(s[i + 1]) <= 0x9F;
    if (len == 0 || c1) {
      out += '?';
      i += len == 0 ? 1 : len;
      continue;
    }
    out.append(s.substr(i, len));
    i += len;
  }
  return out;
}

// ---- compute columns -----------------------------------------------------------------------
// The settings come from the registry's slot; a process that is not arbitrated shows none of
// them ("-" / null). Values a corrupted slot holds outside their range read "?".

bool arbitrated(const ProcessView& p) { return p.arbitrated == 1; }

std::optional<std::string> compute_share(const ProcessView& p) {
  if (!arbitrated(p)) return std::nullopt;
  if (p.compute_percent == 0) return std::string("w100");  // no percentage: weight 100
  if (p.compute_percent > 100) return std::string("?");
  return fmt::format("{}%", p.compute_percent);
}
std::optional<std::uint32_t> compute_percent(const ProcessView& p) {
  if (!arbitrated(p) || p.compute_percent == 0 || p.compute_percent > 100) return std::nullopt;
  return p.compute_percent;
}
std::optional<std::string> compute_mode(const ProcessView& p) {
  if (!arbitrated(p)) return std::nullopt;
  if (p.compute_mode > static_cast<std::uint8_t>(ComputeMode::cap)) return std::string("?");
  return std::string(to_string(static_cast<ComputeMode>(p.compute_mode)));
}
std::optional<std::string> priority(const ProcessView& p) {
  if (!arbitrated(p)) return std::nullopt;
  if (p.priority > static_cast<std::uint8_t>(Priority::low)) return std::string("?");
  return std::string(to_string(static_cast<Priority>(p.priority)));
}
// What the device's schedule says; nothing for a process that is not arbitrated (a joined row
// of such a slot is not believed) or not joined.
std::optional<std::string> compute_state(const ProcessView& p) {
  if (!arbitrated(p) || !p.compute.joined) return std::nullopt;
  return p.compute.state;
}
std::optional<double> delivered(const ProcessView& p) {
  if (!arbitrated(p) || !p.compute.joined) return std::nullopt;
  return p.compute.delivered_share;
}
std::optional<double> utilization(const ProcessView& p) {
  if (!arbitrated(p) || !p.compute.joined) return std::nullopt;
  return p.compute.gpu_utilization;
}

// A fraction 0..1 from the shared table: anything else (NaN included) is not believed.
std::optional<double> fraction(double v) {
  if (!std::isfinite(v) || v < 0.0 || v > 1.0) return std::nullopt;
  return v;
}

std::string percent_text(const std::optional<double>& f) {
  return f ? fmt::format("{:.1f}%", *f * 100.0) : std::string("-");
}

std::string plural(std::size_t n, std::string_view one, std::string_view many) {
  return fmt::format("{} {}", n, n == 1 ? one : many);
}

std::string duration_text(std::uint64_t ns) {
  if (ns < 1'000'000) return fmt::format("{} us", ns / 1000);
  if (ns < 10'000'000'000ull) return fmt::format("{} ms", ns / 1'000'000);
  return fmt::format("{} s", ns / 1'000'000'000ull);
}

// ---- JSON ----------------------------------------------------------------------------------

std::string json_opt_string(const std::optional<std::string>& s) {
  return s ? json_escape(*s) : std::string("null");
}
template <typename T>
std::string json_opt_number(const std::optional<T>& v) {
  return v ? fmt::format("{}", *v) : std::string("null");
}
// A fraction 0..1 as a percentage with two decimals.
std::string json_percent(const std::optional<double>& f) {
  return f ? fmt::format("{:.2f}", *f * 100.0) : std::string("null");
}

std::string json_process(const ProcessView& p, bool on_device) {
  std::string out = fmt::format(R"({{"slot":{},"pid":{},"comm":{},"group":{})", p.slot, p.pid,
                                json_escape(p.comm), json_escape(p.group));
  if (on_device) out += fmt::format(R"(,"charged_bytes":{})", p.charged);
  out += fmt::format(R"(,"arbitrated":{},"compute_percent":{},"compute_mode":{},"priority":{})",
                     arbitrated(p) ? "true" : "false", json_opt_number(compute_percent(p)),
                     json_opt_string(compute_mode(p)), json_opt_string(priority(p)));
  if (on_device) {
    const bool joined = arbitrated(p) && p.compute.joined;
    out += fmt::format(
        R"(,"state":{},"delivered_share_percent":{},"gpu_utilization_percent":{},)"
        R"("gpu_ns_total":{},"heartbeat_age_ms":{})",
        json_opt_string(compute_state(p)), json_percent(delivered(p)), json_percent(utilization(p)),
        joined ? std::to_string(p.compute.gpu_ns_total) : std::string("null"),
        joined ? std::to_string(p.compute.heartbeat_age_ns / 1'000'000) : std::string("null"));
  }
  out += '}';
  return out;
}

// ---- run_status ----------------------------------------------------------------------------

volatile sig_atomic_t g_stop = 0;  // constant-initialised; set by SIGINT/SIGTERM in --watch
void request_stop(int /*sig*/) { g_stop = 1; }

bool segment_exists(const std::string& name) {
  struct stat st {};
  return ::stat(("/dev/shm/" + name).c_str(), &st) == 0;
}

// One frame: the text to print and the exit status.
std::pair<std::string, int> render(const std::string& name, bool json) {
  if (!segment_exists(name)) return {format_absent(name, json), 0};
  auto seg = coordinator::NodeSegment::open_existing(name);
  if (!seg) {
    // Removed between our look and the open: the same as never there.
    if (!segment_exists(name)) return {format_absent(name, json), 0};
    return {fmt::format("xpu-run: status: {}\n", seg.error().message), 1};
  }
  seg.value()->reap_dead();
  const NodeView view = snapshot(seg.value()->layout(), name, timeslice::monotonic_now_ns());
  return {json ? format_json(view) + "\n" : format_text(view), 0};
}

void sleep_interruptibly(double seconds) {
  timespec left{};
  left.tv_sec = static_cast<time_t>(seconds);
  left.tv_nsec = static_cast<long>((seconds - std::floor(seconds)) * 1e9);
  while (!g_stop && ::nanosleep(&left, &left) != 0 && errno == EINTR) {
  }
}

// The compute side of one device: per registry slot, its row in the device's schedule.
struct DeviceCompute {
  timeslice::DeviceStatus status;
  static constexpr std::size_t kNone = ~std::size_t{0};
  std::vector<std::size_t> by_slot = std::vector<std::size_t>(kMaxSlots, kNone);  // into status
  bool measured = false;  // some GPU time was charged on the device in the window

  const timeslice::SlotStatus* row(std::uint32_t slot) const {
    const std::size_t i = slot < kMaxSlots ? by_slot[slot] : kNone;
    return i < status.slots.size() ? &status.slots[i] : nullptr;
  }
};

DeviceCompute read_compute(const timeslice::DeviceSchedule& table, timeslice::Nanos now) {
  DeviceCompute dc;
  dc.status = timeslice::read_status(table, now);
  for (std::size_t i = 0; i < dc.status.slots.size(); ++i) {
    const timeslice::SlotStatus& row = dc.status.slots[i];
    if (row.slot < kMaxSlots) dc.by_slot[row.slot] = i;
    if (row.delivered_share > 0.0) dc.measured = true;
  }
  return dc;
}

// `row` is the schedule's row of a registry slot that belongs to the same group.
ComputeView compute_view(const DeviceCompute& dc, const timeslice::SlotStatus& row) {
  ComputeView c;
  c.joined = true;
  // Alone: no other group is joined on the device. In share mode the scheduler then tracks
  // nothing, so there is no share to show (a 0% would be a lie).
  const bool other_group = std::any_of(dc.status.slots.begin(), dc.status.slots.end(),
                                       [&](const auto& r) { return r.group != row.group; });
  const bool alone = row.mode == timeslice::Mode::kShare && !other_group;
  if (alone) {
    c.state = "alone";
  } else if (row.holder) {
    c.state = "holds";
  } else if (row.waiting) {
    c.state = "waits";
  } else if (row.busy) {
    c.state = "busy";
  } else {
    c.state = "idle";
  }
  if (!alone && dc.measured) {
    c.delivered_share = fraction(row.delivered_share);
    c.gpu_utilization = fraction(row.gpu_utilization);
  }
  c.gpu_ns_total = row.gpu_ns_total;
  c.heartbeat_age_ns =
      row.heartbeat_age_ns > 0 ? static_cast<std::uint64_t>(row.heartbeat_age_ns) : 0;
  return c;
}

}  // namespace

NodeView snapshot(coordinator::NodeLayout& layout, const std::string& segment_name,
                  timeslice::Nanos now) {
  NodeView view;
  view.segment = "/dev/shm/" + segment_name;
  const memquota::Ledger ledger(layout.ledger);

  std::vector<std::string> group_names(kMaxGroups);
  std::vector<bool> group_ready(kMaxGroups, false);
  for (std::uint32_t g = 0; g < kMaxGroups; ++g) {
    const auto& e = layout.groups[g];
    if (e.state.load(std::memory_order_acquire) != kReady) continue;
    group_ready[g] = true;
    group_names[g] = bounded(e.name, sizeof(e.name));
    ++view.group_count;
  }

  struct Slot {
    ProcessView view;
    std::uint32_t group;  // < kMaxGroups and ready, or kNoGroup
    bool placed = false;
  };
  std::vector<Slot> slots;
  for (std::uint32_t s = 0; s < kMaxSlots; ++s) {
    const auto& e = layout.slots[s];
    if (e.state.load(std::memory_order_acquire) != kReady) continue;
    Slot slot;
    slot.view.slot = s;
    slot.view.pid = e.pid;
    slot.view.comm = bounded(e.comm, sizeof(e.comm));
    slot.view.arbitrated = e.arbitrated;
    slot.view.compute_percent = e.compute_percent;
    slot.view.compute_mode = e.compute_mode;
    slot.view.priority = e.priority;
    const std::uint32_t g = e.group.load(std::memory_order_acquire);
    slot.group = g < kMaxGroups && group_ready[g] ? g : coordinator::kNoGroup;
    slot.view.group = slot.group == coordinator::kNoGroup ? "?" : group_names[g];
    slots.push_back(std::move(slot));
  }
  view.process_count = slots.size();

  for (std::uint32_t d = 0; d < kMaxDevices; ++d) {
    const auto& e = layout.devices[d];
    if (e.state.load(std::memory_order_acquire) != kReady) continue;
    DeviceView dev;
    Uuid uuid;
    std::memcpy(uuid.bytes.data(), e.uuid, sizeof(e.uuid));
    dev.uuid = to_string(uuid);
    dev.physical_bytes = e.physical_bytes.load(std::memory_order_relaxed);

    const DeviceCompute dc = read_compute(layout.schedules[d], now);
    if (dc.status.has_holder && dc.status.holder_group < kMaxGroups) {
      dev.holder_index = dc.status.holder_group;
      if (group_ready[dc.status.holder_group])
        dev.holder_name = group_names[dc.status.holder_group];
      dev.slice_age_ns =
          dc.status.slice_age_ns > 0 ? static_cast<std::uint64_t>(dc.status.slice_age_ns) : 0;
    }
    dev.handovers = dc.status.handovers;
    // A registry slot's schedule row, believed only when both name the same group.
    const auto row_of = [&](const Slot& s) -> const timeslice::SlotStatus* {
      const timeslice::SlotStatus* row = dc.row(s.view.slot);
      return row != nullptr && s.group != coordinator::kNoGroup && row->group == s.group ? row
                                                                                         : nullptr;
    };

    for (std::uint32_t g = 0; g < kMaxGroups; ++g) {
      if (!group_ready[g]) continue;
      const std::uint64_t quota = ledger.quota(g, d);
      const std::uint64_t used = ledger.group_usage(g, d);
      // A group is on this device once a member set its quota here, charged memory here, or
      // joined the device's compute schedule.
      const bool computes = std::any_of(slots.begin(), slots.end(), [&](const Slot& s) {
        return s.group == g && row_of(s) != nullptr;
      });
      if (quota == memquota::kQuotaUnset && used == 0 && !computes) continue;
      GroupView group;
      group.name = group_names[g];
      if (quota != memquota::kQuotaUnset && quota != memquota::kUnlimited) group.quota = quota;
      group.used = used;
      for (Slot& s : slots) {
        if (s.group != g) continue;
        ProcessView p = s.view;
        p.charged = ledger.slot_usage(s.view.slot, d);
        if (const timeslice::SlotStatus* row = row_of(s)) p.compute = compute_view(dc, *row);
        group.processes.push_back(std::move(p));
        s.placed = true;
      }
      dev.groups.push_back(std::move(group));
    }
    view.devices.push_back(std::move(dev));
  }
  for (const Slot& s : slots)
    if (!s.placed) view.off_gpu.push_back(s.view);
  return view;
}

std::string format_text(const NodeView& view) {
  std::string out = fmt::format("Node segment {}: {}, {}, {}\n", view.segment,
                                plural(view.devices.size(), "GPU", "GPUs"),
                                plural(view.group_count, "group", "groups"),
                                plural(view.process_count, "process", "processes"));
  if (view.process_count == 0 && view.devices.empty()) {
    out += "no xpushim processes on this node\n";
    return out;
  }
  // Per process: memory charged here / the group's quota; the compute settings (SHARE: a
  // percentage, or w100 for weight 100 without one); what the scheduler measured over the last
  // seconds (DELIVERED: its part of the GPU time used on the device; GPU: its GPU time / wall
  // time) and its STATE. "-": not arbitrated, not joined on this GPU, or not measured.
  constexpr std::string_view kRow = "    {:<8} {:<16} {:>25}  {:<5} {:<5} {:<8} {:>9} {:>6}  {}\n";
  const auto process_header = fmt::format(kRow, "PID", "COMM", "USED / QUOTA", "SHARE", "MODE",
                                          "PRIORITY", "DELIVERED", "GPU", "STATE");
  for (const DeviceView& d : view.devices) {
    out += fmt::format("\n{}  {}\n", d.uuid, format_bytes(d.physical_bytes));
    if (d.holder_index) {
      const std::string holder = d.holder_name
                                     ? printable(*d.holder_name)
                                     : fmt::format("group #{} (unknown)", *d.holder_index);
      out +=
          fmt::format("  compute: held by {} for {}, {}\n", holder, duration_text(d.slice_age_ns),
                      plural(d.handovers, "hand-over", "hand-overs"));
    } else {
      out +=
          fmt::format("  compute: not held, {}\n", plural(d.handovers, "hand-over", "hand-overs"));
    }
    if (d.groups.empty()) {
      out += "  (no group uses this GPU now)\n";
      continue;
    }
    out += fmt::format("  {:<34} {:>12} {:>12}\n", "GROUP", "QUOTA", "USED");
    for (const GroupView& g : d.groups) {
      const std::string quota = g.quota ? format_bytes(*g.quota) : std::string("none");
      out +=
          fmt::format("  {:<34} {:>12} {:>12}\n", printable(g.name), quota, format_bytes(g.used));
      if (g.processes.empty()) continue;
      out += process_header;
      for (const ProcessView& p : g.processes) {
        out += fmt::format(kRow, p.pid, printable(p.comm),
                           fmt::format("{} / {}", format_bytes(p.charged), quota),
                           compute_share(p).value_or("-"), compute_mode(p).value_or("-"),
                           priority(p).value_or("-"), percent_text(delivered(p)),
                           percent_text(utilization(p)), compute_state(p).value_or("-"));
      }
    }
  }
  if (!view.off_gpu.empty()) {
    out += "\nProcesses without memory or compute on any GPU yet:\n";
    constexpr std::string_view kOff = "    {:<8} {:<16} {:<34} {:<5} {:<5} {}\n";
    out += fmt::format(kOff, "PID", "COMM", "GROUP", "SHARE", "MODE", "PRIORITY");
    for (const ProcessView& p : view.off_gpu) {
      out += fmt::format(kOff, p.pid, printable(p.comm), printable(p.group),
                         compute_share(p).value_or("-"), compute_mode(p).value_or("-"),
                         priority(p).value_or("-"));
    }
  }
  return out;
}

std::string format_json(const NodeView& view) {
  std::string out =
      fmt::format(R"({{"segment":{},"exists":true,"devices":[)", json_escape(view.segment));
  for (std::size_t i = 0; i < view.devices.size(); ++i) {
    const DeviceView& d = view.devices[i];
    if (i > 0) out += ',';
    out += fmt::format(
        R"({{"uuid":{},"physical_bytes":{},"holder_group":{},"holder_group_index":{},)"
        R"("slice_age_ms":{},"handovers":{},"groups":[)",
        json_escape(d.uuid), d.physical_bytes, json_opt_string(d.holder_name),
        json_opt_number(d.holder_index),
        d.holder_index ? std::to_string(d.slice_age_ns / 1'000'000) : std::string("null"),
        d.handovers);
    for (std::size_t j = 0; j < d.groups.size(); ++j) {
      const GroupView& g = d.groups[j];
      if (j > 0) out += ',';
      out += fmt::format(R"({{"name":{},"quota_bytes":{},"used_bytes":{},"processes":[)",
                         json_escape(g.name), json_opt_number(g.quota), g.used);
      for (std::size_t k = 0; k < g.processes.size(); ++k) {
        if (k > 0) out += ',';
        out += json_process(g.processes[k], true);
      }
      out += "]}";
    }
    out += "]}";
  }
  out += R"(],"processes_without_gpu":[)";
  for (std::size_t i = 0; i < view.off_gpu.size(); ++i) {
    if (i > 0) out += ',';
    out += json_process(view.off_gpu[i], false);
  }
  out += fmt::format(R"(],"process_count":{},"group_count":{}}})", view.process_count,
                     view.group_count);
  return out;
}

std::string json_escape(std::string_view text) {
  std::string out = "\"";
  for (std::size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      const std::size_t len = utf8_length(text, i);
      if (len == 0) {
        out += "\\ufffd";
        ++i;
      } else {
        out.append(text.substr(i, len));
        i += len;
      }
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += fmt::format("\\u{:04x}", c);
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
  out += '"';
  return out;
}

std::string format_absent(const std::string& segment_name, bool json) {
  if (!json) return "no xpushim processes on this node\n";
  return fmt::format(
      R"({{"segment":{},"exists":false,"devices":[],"processes_without_gpu":[],)"
      R"("process_count":0,"group_count":0,"message":"no xpushim processes on this node"}})"
      "\n",
      json_escape("/dev/shm/" + segment_name));
}

int run_status(const StatusArgs& args) {
  std::string name;
  if (args.node_segment) {
    name = *args.node_segment;
  } else {
    // Only XPU_NODE_SEGMENT matters here: a bad XPU_MEM_LIMIT in this shell must not stop
    // anyone from looking at the node.
    const EnvLookup env = process_environment();
    auto settings = load_settings([&env](std::string_view var) -> std::optional<std::string> {
      if (var != "XPU_NODE_SEGMENT") return std::nullopt;
      return env(var);
    });
    if (!settings) {
      std::fputs(fmt::format("xpu-run: {}\n", settings.error().message).c_str(), stderr);
      return 2;
    }
    name = settings.value().node_segment;
  }

  if (args.watch) {
    struct sigaction sa {};
    sa.sa_handler = request_stop;  // no SA_RESTART: the sleep must end at once
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
  }
  // A terminal is redrawn in place; a pipe or file gets the snapshots one after another, text
  // ones parted by a separator line, JSON ones one per line (JSON lines).
  const bool clear = args.watch && !args.json && ::isatty(STDOUT_FILENO) == 1;
  constexpr std::string_view kSeparator =
      "------------------------------------------------------------------------\n";
  for (std::uint64_t shown = 0;; ++shown) {
    auto [text, rc] = render(name, args.json);
    if (clear) {
      const std::time_t now = std::time(nullptr);
      std::tm local{};
      char when[64] = "";
      if (::localtime_r(&now, &local) != nullptr) std::strftime(when, sizeof when, "%F %T", &local);
      text = fmt::format("\x1b[H\x1b[2JEvery {}s: xpu-run status  {}\n\n{}", args.interval_s, when,
                         text);
    } else if (shown > 0 && !args.json && rc == 0) {
      text = std::string(kSeparator) + text;
    }
    std::fputs(text.c_str(), rc == 0 ? stdout : stderr);
    std::fflush(stdout);
    if (!args.watch || rc != 0) return rc;  // an unreadable segment will not heal by itself
    if (args.watch_count && shown + 1 >= *args.watch_count) return 0;
    sleep_interruptibly(args.interval_s);
    if (g_stop) return 0;
  }
}

}  // namespace xpu::run
