// xpuFakeQuery: numbers of the simulated devices for tests (see include/xpu_fake/fake_api.h).
// Reads the shared state directly, so it needs no cuInit and sees every process.
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string_view>

#include "exports.hpp"
#include "process.hpp"
#include "xpu_fake/fake_api.h"

namespace xpu_fake {
namespace {

enum class Field { kUsed, kBusy, kKernels, kContexts };

// "<prefix><pid>" -> pid. Returns 1 if parsed, 0 if what has another prefix, -1 if malformed.
int parse_pid(std::string_view what, std::string_view prefix, int32_t* pid) {
  if (what.substr(0, prefix.size()) != prefix) return 0;
  const std::string num(what.substr(prefix.size()));
  char* end = nullptr;
  errno = 0;
  long v = num.empty() ? 0 : strtol(num.c_str(), &end, 10);
  if (num.empty() || errno != 0 || *end != '\0' || v <= 0 || v > INT32_MAX) return -1;
  *pid = static_cast<int32_t>(v);
  return 1;
}

// Which per-pid field `what` asks for, and of which pid; false if it is not a per-pid query.
bool pid_query(std::string_view what, Field* field, int32_t* pid, bool* malformed) {
  struct Named {
    std::string_view self_name;
    std::string_view prefix;
    Field field;
  };
  static constexpr Named kNames[] = {
      {"pid_used_bytes", "used_bytes_of_pid:", Field::kUsed},
      {"pid_busy_ns", "busy_ns_of_pid:", Field::kBusy},
      {"pid_kernel_count", "kernel_count_of_pid:", Field::kKernels},
      {"", "contexts_of_pid:", Field::kContexts},
  };
  *malformed = false;
  for (const Named& n : kNames) {
    *field = n.field;
    if (!n.self_name.empty() && what == n.self_name) {
      *pid = static_cast<int32_t>(getpid());
      return true;
    }
    const int r = parse_pid(what, n.prefix, pid);
    if (r != 0) {
      *malformed = r < 0;
      return true;
    }
  }
  return false;
}

int query(const char* what_c, int dev, unsigned long long* out) {
  if (what_c == nullptr || out == nullptr) return -3;
  *out = 0;
  SharedState* s = state();
  if (s == nullptr) return -4;
  const std::string_view what(what_c);
  if (what == "device_count") {
    *out = s->device_count;
    return 0;
  }
  if (what == "ctx_bytes") {
    *out = s->ctx_bytes;
    return 0;
  }
  if (what == "ns_per_block") {
    *out = s->ns_per_block;
    return 0;
  }
  if (dev < 0 || dev >= static_cast<int>(s->device_count)) return -2;
  if (what == "graph_mem_reserved") {
    ProcLock lk;
    *out = proc().graph_mem[dev].reserved;
    return 0;
  }
  const DeviceRecord& d = s->dev[dev];
  if (what == "total_bytes") {
    *out = d.total;
    return 0;
  }
  if (what == "device_busy_ns") {
    *out = d.busy_total_ns.load();
    return 0;
  }
  if (what == "device_kernel_count") {
    *out = d.kernels.load();
    return 0;
  }
  if (what == "busy_until_ns") {
    *out = d.busy_until_ns.load();
    return 0;
  }

  SharedLock lk(s);
  reap_locked(s, true);
  if (what == "used_bytes" || what == "free_bytes") {
    const uint64_t used = std::min(device_used_locked(s, dev), d.total);
    *out = what == "used_bytes" ? used : d.total - used;
    return 0;
  }
  if (what == "live_pids") {
    unsigned long long n = 0;
    for (const auto& r : s->pids) {
      if (r.state == kPidLive && (r.used[dev] != 0 || r.contexts[dev] != 0)) ++n;
    }
    *out = n;
    return 0;
  }

  Field field = Field::kUsed;
  int32_t pid = 0;
  bool malformed = false;
  if (!pid_query(what, &field, &pid, &malformed) || malformed) return -1;
  const int slot = find_pid_locked(s, pid);
  const bool self = pid == static_cast<int32_t>(getpid());
  if (slot < 0) return self ? 0 : -5;  // this process simply has not used the device yet
  const PidRecord& r = s->pids[slot];
  switch (field) {
    case Field::kUsed:
      *out = r.state == kPidLive ? r.used[dev] : 0;
      break;
    case Field::kBusy:
      *out = r.busy_ns[dev].load();
      break;
    case Field::kKernels:
      *out = r.kernels[dev].load();
      break;
    case Field::kContexts:
      *out = r.state == kPidLive ? r.contexts[dev] : 0;
      break;
  }
  return 0;
}

}  // namespace
}  // namespace xpu_fake

extern "C" XPU_FAKE_EXPORT int xpuFakeQuery(const char* what, int device, unsigned long long* out) {
  try {
    return xpu_fake::query(what, device, out);
  } catch (...) {
    return -4;
  }
}
