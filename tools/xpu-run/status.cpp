#include "status.hpp"

#include <fmt/format.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

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

namespace xpu::run {
namespace {

using coordinator::EntryState;

constexpr auto kReady = static_cast<std::uint32_t>(EntryState::ready);

// A NUL-terminated name in a fixed array that another process wrote: never read past the array.
std::string bounded(const char* text, std::size_t capacity) {
  return std::string(text, ::strnlen(text, capacity));
}

// For the terminal: a corrupt or hostile name must not emit escape sequences.
std::string printable(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) c = '?';
  }
  return out;
}

// The compute columns: nothing is recorded while compute_percent is 0 (the compute issue has
// not written the slot), so mode and priority are not shown either, since their zero values
// ("share", "high") would otherwise be invented.
std::optional<std::string> compute_share(const ProcessView& p) {
  if (p.compute_percent == 0) return std::nullopt;
  if (p.compute_percent > 100) return std::string("?");
  return fmt::format("{}%", p.compute_percent);
}
std::optional<std::string> compute_mode(const ProcessView& p) {
  if (p.compute_percent == 0) return std::nullopt;
  if (p.compute_mode > static_cast<std::uint8_t>(ComputeMode::cap)) return std::string("?");
  return std::string(to_string(static_cast<ComputeMode>(p.compute_mode)));
}
std::optional<std::string> priority(const ProcessView& p) {
  if (p.compute_percent == 0) return std::nullopt;
  if (p.priority > static_cast<std::uint8_t>(Priority::low)) return std::string("?");
  return std::string(to_string(static_cast<Priority>(p.priority)));
}

std::string plural(std::size_t n, std::string_view one, std::string_view many) {
  return fmt::format("{} {}", n, n == 1 ? one : many);
}

std::string json_opt_string(const std::optional<std::string>& s) {
  return s ? json_escape(*s) : std::string("null");
}

std::string json_process(const ProcessView& p, bool with_charge) {
  std::string out = fmt::format(R"({{"slot":{},"pid":{},"comm":{},"group":{})", p.slot, p.pid,
                                json_escape(p.comm), json_escape(p.group));
  if (with_charge) out += fmt::format(R"(,"charged_bytes":{})", p.charged);
  // Compute share, mode and priority: null until the compute issue records them. (A measured
  // "delivered share" will join these once the segment holds one.)
  out += fmt::format(R"(,"compute_percent":{},"compute_mode":{},"priority":{}}})",
                     p.compute_percent == 0 || p.compute_percent > 100
                         ? std::string("null")
                         : std::to_string(p.compute_percent),
                     json_opt_string(compute_mode(p)), json_opt_string(priority(p)));
  return out;
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
  const NodeView view = snapshot(seg.value()->layout(), name);
  return {json ? format_json(view) + "\n" : format_text(view), 0};
}

void sleep_interruptibly(double seconds) {
  timespec left{};
  left.tv_sec = static_cast<time_t>(seconds);
  left.tv_nsec = static_cast<long>((seconds - std::floor(seconds)) * 1e9);
  while (!g_stop && ::nanosleep(&left, &left) != 0 && errno == EINTR) {
  }
}

}  // namespace

NodeView snapshot(coordinator::NodeLayout& layout, const std::string& segment_name) {
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
    for (std::uint32_t g = 0; g < kMaxGroups; ++g) {
      if (!group_ready[g]) continue;
      const std::uint64_t quota = ledger.quota(g, d);
      const std::uint64_t used = ledger.group_usage(g, d);
      // A group is on this device once a member set its quota here or charged memory here.
      if (quota == memquota::kQuotaUnset && used == 0) continue;
      GroupView group;
      group.name = group_names[g];
      if (quota != memquota::kQuotaUnset && quota != memquota::kUnlimited) group.quota = quota;
      group.used = used;
      for (Slot& s : slots) {
        if (s.group != g) continue;
        ProcessView p = s.view;
        p.charged = ledger.slot_usage(s.view.slot, d);
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
  // SHARE, MODE and PRIORITY are the compute settings of each process ("-": not set).
  const auto process_header = fmt::format("    {:<5} {:<8} {:<16} {:>12}  {:<6} {:<6} {}\n", "SLOT",
                                          "PID", "COMM", "CHARGED", "SHARE", "MODE", "PRIORITY");
  for (const DeviceView& d : view.devices) {
    out += fmt::format("\n{}  {}\n", d.uuid, format_bytes(d.physical_bytes));
    if (d.groups.empty()) {
      out += "  (no group uses this GPU now)\n";
      continue;
    }
    out += fmt::format("  {:<34} {:>12} {:>12}\n", "GROUP", "QUOTA", "USED");
    for (const GroupView& g : d.groups) {
      out +=
          fmt::format("  {:<34} {:>12} {:>12}\n", printable(g.name),
                      g.quota ? format_bytes(*g.quota) : std::string("none"), format_bytes(g.used));
      if (g.processes.empty()) continue;
      out += process_header;
      for (const ProcessView& p : g.processes) {
        out +=
            fmt::format("    {:<5} {:<8} {:<16} {:>12}  {:<6} {:<6} {}\n", p.slot, p.pid,
                        printable(p.comm), format_bytes(p.charged), compute_share(p).value_or("-"),
                        compute_mode(p).value_or("-"), priority(p).value_or("-"));
      }
    }
  }
  if (!view.off_gpu.empty()) {
    out += "\nProcesses without memory on any GPU yet:\n";
    out += fmt::format("    {:<5} {:<8} {:<16} {:<34} {:<6} {:<6} {}\n", "SLOT", "PID", "COMM",
                       "GROUP", "SHARE", "MODE", "PRIORITY");
    for (const ProcessView& p : view.off_gpu) {
      out += fmt::format("    {:<5} {:<8} {:<16} {:<34} {:<6} {:<6} {}\n", p.slot, p.pid,
                         printable(p.comm), printable(p.group), compute_share(p).value_or("-"),
                         compute_mode(p).value_or("-"), priority(p).value_or("-"));
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
    out += fmt::format(R"({{"uuid":{},"physical_bytes":{},"groups":[)", json_escape(d.uuid),
                       d.physical_bytes);
    for (std::size_t j = 0; j < d.groups.size(); ++j) {
      const GroupView& g = d.groups[j];
      if (j > 0) out += ',';
      out += fmt::format(R"({{"name":{},"quota_bytes":{},"used_bytes":{},"processes":[)",
                         json_escape(g.name),
                         g.quota ? std::to_string(*g.quota) : std::string("null"), g.used);
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
  const bool clear = args.watch && !args.json && ::isatty(STDOUT_FILENO) == 1;
  for (;;) {
    auto [text, rc] = render(name, args.json);
    if (clear) {
      const std::time_t now = std::time(nullptr);
      char when[64] = "";
      std::strftime(when, sizeof when, "%F %T", std::localtime(&now));
      text = fmt::format("\x1b[H\x1b[2JEvery {}s: xpu-run status  {}\n\n{}", args.interval_s, when,
                         text);
    }
    std::fputs(text.c_str(), rc == 0 ? stdout : stderr);
    std::fflush(stdout);
    if (!args.watch || rc != 0) return rc;  // an unreadable segment will not heal by itself
    if (!clear && !args.json) std::fputs("\n", stdout);
    sleep_interruptibly(args.interval_s);
    if (g_stop) return 0;
  }
}

}  // namespace xpu::run
