#include "xpu/common/settings.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "xpu/common/units.hpp"
#include "xpu/timeslice/tunables.hpp"

namespace xpu {
namespace {

struct OptionRow {
  OptionInfo info;
  Status (*parse)(std::string_view value, Settings& out);
};

Error invalid(std::string_view env, std::string_view value, std::string_view why,
              std::string_view accepts) {
  return make_error(Errc::invalid_config,
                    fmt::format("{}='{}' is invalid: {}. Accepted: {}.", env, value, why, accepts));
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  for (;;) {
    const auto pos = s.find(sep);
    parts.push_back(s.substr(0, pos));
    if (pos == std::string_view::npos) return parts;
    s.remove_prefix(pos + 1);
  }
}

bool all_of_charset(std::string_view s, std::string_view extra) {
  for (char c : s) {
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && extra.find(c) == std::string_view::npos) return false;
  }
  return true;
}

Result<MemQuota> parse_quota_value(std::string_view v, BareNumber bare) {
  if (!v.empty() && v.back() == '%') {
    auto pct = parse_percent(v, false);
    if (!pct) return pct.error();
    return MemQuota{true, 0, pct.value()};
  }
  auto bytes = parse_size(v, bare);
  if (!bytes) return bytes.error();
  return MemQuota{false, bytes.value(), 0};
}

Result<DeviceKey> parse_device_key(std::string_view key) {
  if (auto uuid = parse_uuid(key)) return DeviceKey{-1, uuid};
  if (key.empty() || key.size() > 2 || !all_of_charset(key, ""))
    return make_error(Errc::invalid_config,
                      fmt::format("'{}' is neither a CUDA ordinal (0-63) nor a GPU UUID", key));
  for (char c : key)
    if (c < '0' || c > '9')
      return make_error(Errc::invalid_config,
                        fmt::format("'{}' is neither a CUDA ordinal (0-63) nor a GPU UUID", key));
  const int ordinal = std::stoi(std::string(key));
  if (ordinal > 63)
    return make_error(Errc::invalid_config, fmt::format("device ordinal {} is above 63", ordinal));
  return DeviceKey{ordinal, std::nullopt};
}

Result<MemLimitSpec> parse_mem_spec(std::string_view value, BareNumber bare) {
  MemLimitSpec spec;
  if (value.find('=') == std::string_view::npos) {
    if (value.find(',') != std::string_view::npos)
      return make_error(Errc::invalid_config,
                        "a list needs device keys (0=10GiB,1=20GiB); one value applies to all");
    auto q = parse_quota_value(value, bare);
    if (!q) return q.error();
    spec.all = q.value();
    return spec;
  }
  for (std::string_view entry : split(value, ',')) {
    const auto eq = entry.find('=');
    if (eq == std::string_view::npos)
      return make_error(Errc::invalid_config,
                        fmt::format("list entry '{}' has no '=' (write DEVICE=SIZE)", entry));
    auto key = parse_device_key(entry.substr(0, eq));
    if (!key) return key.error();
    auto q = parse_quota_value(entry.substr(eq + 1), bare);
    if (!q)
      return make_error(Errc::invalid_config,
                        fmt::format("entry '{}': {}", entry, q.error().message));
    for (const auto& [k, unused] : spec.devices) {
      if (k == key.value())
        return make_error(Errc::invalid_config,
                          fmt::format("device '{}' is listed twice", entry.substr(0, eq)));
    }
    spec.devices.emplace_back(key.value(), q.value());
  }
  return spec;
}

const OptionInfo& info_of(std::string_view env);

Status parse_mem_limit(std::string_view v, Settings& out) {
  auto spec = parse_mem_spec(v, BareNumber::rejected);
  if (!spec)
    return invalid("XPU_MEM_LIMIT", v, spec.error().message, info_of("XPU_MEM_LIMIT").accepts);
  out.mem_limit = spec.value();
  out.mem_limit_source = "XPU_MEM_LIMIT";
  return Ok{};
}

Status check_group_name(std::string_view env, std::string_view v) {
  if (v.empty() || v.size() > 63 || !all_of_charset(v, "._:-"))
    return invalid(env, v, v.empty() ? "the name is empty" : "bad length or character",
                   info_of("XPU_GROUP").accepts);
  return Ok{};
}

Status parse_group(std::string_view v, Settings& out) {
  if (auto s = check_group_name("XPU_GROUP", v); !s) return s;
  out.group = std::string(v);
  out.group_source = "XPU_GROUP";
  return Ok{};
}

Status parse_compute(std::string_view v, Settings& out) {
  auto pct = parse_percent(v, true);
  if (!pct) return invalid("XPU_COMPUTE", v, pct.error().message, info_of("XPU_COMPUTE").accepts);
  if (pct.value() % 100 != 0)
    return invalid("XPU_COMPUTE", v, "the granularity is 1%", info_of("XPU_COMPUTE").accepts);
  out.compute = pct.value() / 100;
  out.compute_source = "XPU_COMPUTE";
  return Ok{};
}

Status parse_compute_mode(std::string_view v, Settings& out) {
  if (v == "share") {
    out.compute_mode = ComputeMode::share;
  } else if (v == "cap") {
    out.compute_mode = ComputeMode::cap;
  } else {
    return invalid("XPU_COMPUTE_MODE", v, "unknown mode", info_of("XPU_COMPUTE_MODE").accepts);
  }
  return Ok{};
}

Status parse_priority(std::string_view v, Settings& out) {
  if (v == "high") {
    out.priority = Priority::high;
  } else if (v == "normal") {
    out.priority = Priority::normal;
  } else if (v == "low") {
    out.priority = Priority::low;
  } else {
    return invalid("XPU_PRIORITY", v, "unknown priority", info_of("XPU_PRIORITY").accepts);
  }
  out.priority_source = "XPU_PRIORITY";
  return Ok{};
}

Status parse_sched_tunables(std::string_view v, Settings& out) {
  if (v.empty())
    return invalid("XPU_SCHED_TUNABLES", v, "empty", info_of("XPU_SCHED_TUNABLES").accepts);
  timeslice::Tunables scratch;
  if (std::string why = timeslice::apply_overrides(scratch, v); !why.empty())
    return invalid("XPU_SCHED_TUNABLES", v, why + " (names: " + timeslice::override_names() + ")",
                   info_of("XPU_SCHED_TUNABLES").accepts);
  out.sched_tunables = std::string(v);
  return Ok{};
}

Status parse_log_level(std::string_view v, Settings& out) {
  for (LogLevel l : {LogLevel::error, LogLevel::warn, LogLevel::info, LogLevel::debug}) {
    if (v == to_string(l)) {
      out.log_level = l;
      return Ok{};
    }
  }
  return invalid("XPU_LOG_LEVEL", v, "unknown level", info_of("XPU_LOG_LEVEL").accepts);
}

Status parse_node_segment(std::string_view v, Settings& out) {
  if (v.empty() || v.size() > 200 || !all_of_charset(v, "._-"))
    return invalid("XPU_NODE_SEGMENT", v, "bad length or character",
                   info_of("XPU_NODE_SEGMENT").accepts);
  out.node_segment = std::string(v);
  return Ok{};
}

const std::vector<OptionRow>& rows() {
  static const std::vector<OptionRow> table = {
#define XPU_OPTION(field, env, flag, metavar, accepts, summary) \
  {{env, flag, metavar, accepts, summary}, &parse_##field},
#include "xpu/common/options.def"
#undef XPU_OPTION
  };
  return table;
}

const OptionInfo& info_of(std::string_view env) {
  for (const auto& r : rows())
    if (r.info.env == env) return r.info;
  static const OptionInfo none{};
  return none;
}

// --- HAMi's device-plugin contract ------------------------------------------------------------
// HAMi's Kubernetes device plugin injects these into containers; reading them makes xpushim a
// drop-in for HAMi-core. Unlike HAMi-core, a malformed or zero value is an error, never "no limit".
//   CUDA_DEVICE_MEMORY_LIMIT        quota for every device ("1g", "1024m"; bare = bytes)
//   CUDA_DEVICE_MEMORY_LIMIT_<i>    quota for CUDA ordinal i (0-63)
//   CUDA_DEVICE_SM_LIMIT            compute cap in percent; 0 or 100 mean "no limit" (HAMi's rule)
//   CUDA_TASK_PRIORITY              0 = high, 1 = low
//   CUDA_DEVICE_MEMORY_SHARED_CACHE one shared region per container: becomes the group
constexpr std::string_view kHamiMemAccepts =
    "a size such as 1g, 1024m, 1048576k or 1073741824 (bytes)";

Status load_hami(const EnvLookup& env, Settings& out) {
  MemLimitSpec hami;
  std::string sources;
  if (auto v = env("CUDA_DEVICE_MEMORY_LIMIT")) {
    auto q = parse_quota_value(*v, BareNumber::bytes);
    if (!q || q.value().percent)
      return invalid("CUDA_DEVICE_MEMORY_LIMIT", *v,
                     q ? "percentages are not part of HAMi's contract" : q.error().message,
                     kHamiMemAccepts);
    hami.all = q.value();
    sources = "CUDA_DEVICE_MEMORY_LIMIT";
  }
  for (int i = 0; i < 64; ++i) {
    const std::string name = fmt::format("CUDA_DEVICE_MEMORY_LIMIT_{}", i);
    auto v = env(name);
    if (!v) continue;
    auto q = parse_quota_value(*v, BareNumber::bytes);
    if (!q || q.value().percent)
      return invalid(name, *v,
                     q ? "percentages are not part of HAMi's contract" : q.error().message,
                     kHamiMemAccepts);
    hami.devices.emplace_back(DeviceKey{i, std::nullopt}, q.value());
    sources += sources.empty() ? name : "," + name;
  }
  if (!hami.empty()) {
    if (!out.mem_limit.empty() && !(out.mem_limit == hami))
      return make_error(Errc::invalid_config,
                        fmt::format("conflicting settings: XPU_MEM_LIMIT and {} disagree; set only "
                                    "one of them",
                                    sources));
    if (out.mem_limit.empty()) {
      out.mem_limit = hami;
      out.mem_limit_source = sources;
    }
  }
  if (auto v = env("CUDA_DEVICE_SM_LIMIT")) {
    auto pct = parse_percent(*v, true);
    const bool zero = *v == "0";
    if (!zero && (!pct || pct.value() % 100 != 0))
      return invalid("CUDA_DEVICE_SM_LIMIT", *v,
                     pct ? "the granularity is 1%" : pct.error().message,
                     "a whole percentage from 0 to 100 (0 and 100 mean no limit)");
    if (!zero && pct.value() != 10000) {
      const std::uint32_t percent = pct.value() / 100;
      if (out.compute && (*out.compute != percent || out.compute_mode != ComputeMode::cap))
        return make_error(Errc::invalid_config,
                          "conflicting settings: XPU_COMPUTE/XPU_COMPUTE_MODE and "
                          "CUDA_DEVICE_SM_LIMIT disagree; set only one of them");
      out.compute = percent;
      out.compute_mode = ComputeMode::cap;
      out.compute_source = "CUDA_DEVICE_SM_LIMIT";
    }
  }
  if (auto v = env("CUDA_TASK_PRIORITY")) {
    Priority p;
    if (*v == "0") {
      p = Priority::high;
    } else if (*v == "1") {
      p = Priority::low;
    } else {
      return invalid("CUDA_TASK_PRIORITY", *v, "unknown priority", "0 (high) or 1 (low)");
    }
    if (!out.priority_source.empty() && out.priority != p)
      return make_error(Errc::invalid_config,
                        "conflicting settings: XPU_PRIORITY and CUDA_TASK_PRIORITY disagree");
    out.priority = p;
    if (out.priority_source.empty()) out.priority_source = "CUDA_TASK_PRIORITY";
  }
  if (auto v = env("CUDA_DEVICE_MEMORY_SHARED_CACHE"); v && out.group.empty()) {
    // A path; keep it recognisable but inside the group-name charset and length.
    std::string name = "hami:";
    const std::size_t h = std::hash<std::string>{}(*v);
    name += fmt::format("{:016x}", h);
    out.group = name;
    out.group_source = "CUDA_DEVICE_MEMORY_SHARED_CACHE";
  }
  return Ok{};
}

}  // namespace

std::string_view to_string(ComputeMode mode) { return mode == ComputeMode::cap ? "cap" : "share"; }
std::string_view to_string(Priority priority) {
  switch (priority) {
    case Priority::high:
      return "high";
    case Priority::normal:
      return "normal";
    case Priority::low:
      return "low";
  }
  return "?";
}

EnvLookup process_environment() {
  return [](std::string_view name) -> std::optional<std::string> {
    const char* v = std::getenv(std::string(name).c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

Result<Settings> load_settings(const EnvLookup& env) {
  Settings out;
  for (const OptionRow& row : rows()) {
    if (auto v = env(row.info.env)) {
      if (auto s = row.parse(*v, out); !s) return s.error();
    }
  }
  if (auto s = load_hami(env, out); !s) return s.error();
  if (out.node_segment.empty()) out.node_segment = fmt::format("xpushim-u{}", ::getuid());
  if (!out.compute && !out.compute_source.empty()) out.compute_source.clear();
  if (out.compute_mode == ComputeMode::cap && !out.compute)
    return make_error(Errc::invalid_config,
                      "XPU_COMPUTE_MODE=cap needs XPU_COMPUTE: a cap is a percentage of the GPU "
                      "(set XPU_COMPUTE=N, 1 to 100, or drop the mode)");
  return out;
}

Status validate_option(std::string_view env_name, std::string_view value) {
  Settings scratch;
  for (const OptionRow& row : rows()) {
    if (row.info.env == env_name) return row.parse(value, scratch);
  }
  return make_error(Errc::internal, fmt::format("no option named {}", env_name));
}

Result<std::optional<std::uint64_t>> resolve_quota(const Settings& settings, int ordinal,
                                                   const Uuid& uuid, std::uint64_t device_bytes) {
  const MemLimitSpec& spec = settings.mem_limit;
  std::optional<MemQuota> chosen = spec.all;
  int matches = 0;
  for (const auto& [key, quota] : spec.devices) {
    const bool hit = (key.uuid && *key.uuid == uuid) || (!key.uuid && key.ordinal == ordinal);
    if (hit) {
      chosen = quota;
      ++matches;
    }
  }
  const std::string& var = settings.mem_limit_source;
  if (matches > 1)
    return make_error(Errc::invalid_config,
                      fmt::format("conflicting settings: {} names device {} ({}) twice, by ordinal "
                                  "and by UUID",
                                  var, ordinal, to_string(uuid)));
  if (!chosen) return std::optional<std::uint64_t>{};
  std::uint64_t bytes = chosen->bytes;
  if (chosen->percent) {
    // device_bytes * hundredths can exceed 64 bits; split the product.
    const std::uint64_t h = chosen->hundredths;
    bytes = device_bytes / 10000 * h + device_bytes % 10000 * h / 10000;
    if (bytes == 0)
      return make_error(Errc::invalid_config,
                        fmt::format("{}: {:.2f}% of device {} is zero bytes", var,
                                    chosen->hundredths / 100.0, ordinal));
  }
  if (bytes > device_bytes)
    return make_error(
        Errc::invalid_config,
        fmt::format("{}: the quota {} is larger than device {} ({}, {})", var, format_bytes(bytes),
                    ordinal, to_string(uuid), format_bytes(device_bytes)));
  return std::optional<std::uint64_t>{bytes};
}

std::vector<std::string> describe(const Settings& s) {
  std::vector<std::string> lines;
  auto src = [](const std::string& from) { return from.empty() ? std::string("default") : from; };
  std::string mem = "none";
  if (s.mem_limit.all) {
    mem = s.mem_limit.all->percent
              ? fmt::format("{:.2f}% of each device", s.mem_limit.all->hundredths / 100.0)
              : format_bytes(s.mem_limit.all->bytes) + " on each device";
  }
  for (const auto& [key, q] : s.mem_limit.devices) {
    const std::string dev = key.uuid ? to_string(*key.uuid) : fmt::format("device {}", key.ordinal);
    const std::string val =
        q.percent ? fmt::format("{:.2f}%", q.hundredths / 100.0) : format_bytes(q.bytes);
    mem = (mem == "none" ? std::string() : mem + ", ") + dev + "=" + val;
  }
  lines.push_back(fmt::format("memory quota: {} (from {})", mem, src(s.mem_limit_source)));
  lines.push_back(fmt::format("group: {} (from {})",
                              s.group.empty() ? "this process alone" : s.group,
                              src(s.group_source)));
  lines.push_back(fmt::format("compute: {} (from {})",
                              s.compute
                                  ? fmt::format("{}% {}", *s.compute, to_string(s.compute_mode))
                                  : std::string("no limit"),
                              src(s.compute_source)));
  lines.push_back(
      fmt::format("priority: {} (from {})", to_string(s.priority), src(s.priority_source)));
  if (!s.sched_tunables.empty())
    lines.push_back(
        fmt::format("scheduler overrides: {} (from XPU_SCHED_TUNABLES)", s.sched_tunables));
  lines.push_back(fmt::format("node segment: /dev/shm/{}", s.node_segment));
  return lines;
}

const std::vector<OptionInfo>& option_table() {
  static const std::vector<OptionInfo> table = [] {
    std::vector<OptionInfo> t;
    for (const auto& r : rows()) t.push_back(r.info);
    return t;
  }();
  return table;
}

}  // namespace xpu
