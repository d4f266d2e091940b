// Parsed, validated settings: the shim and xpu-run both build these from the options table.
// Parsing is strict; a malformed or conflicting value is an error that names the variable and
// the accepted forms. Nothing here ever turns a bad value into "unlimited".
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "xpu/common/log.hpp"
#include "xpu/common/result.hpp"
#include "xpu/common/uuid.hpp"

namespace xpu {

struct MemQuota {
  bool percent = false;          // true: a share of the device's physical memory
  std::uint64_t bytes = 0;       // when !percent
  std::uint32_t hundredths = 0;  // when percent: 2500 = 25%
  friend bool operator==(const MemQuota&, const MemQuota&) = default;
};

struct DeviceKey {
  int ordinal = -1;          // CUDA ordinal as the process sees it, or
  std::optional<Uuid> uuid;  // a GPU UUID, stable across CUDA_VISIBLE_DEVICES
  friend bool operator==(const DeviceKey&, const DeviceKey&) = default;
};

struct MemLimitSpec {
  std::optional<MemQuota> all;                          // one quota for every device
  std::vector<std::pair<DeviceKey, MemQuota>> devices;  // per-device entries
  bool empty() const { return !all && devices.empty(); }
  friend bool operator==(const MemLimitSpec&, const MemLimitSpec&) = default;
};

enum class ComputeMode : std::uint8_t { share = 0, cap = 1 };
enum class Priority : std::uint8_t { high = 0, normal = 1, low = 2 };
std::string_view to_string(ComputeMode mode);
std::string_view to_string(Priority priority);

struct Settings {
  MemLimitSpec mem_limit;
  std::string group;                     // empty: this process alone
  std::optional<std::uint32_t> compute;  // whole percent 1..100
  ComputeMode compute_mode = ComputeMode::share;
  Priority priority = Priority::normal;
  std::string sched_tunables;  // validated by timeslice::apply_overrides; empty = defaults
  LogLevel log_level = LogLevel::warn;
  std::string node_segment;  // never empty after load_settings

  // Takes part in compute arbitration: a share/cap or a priority was set. Without a share it
  // competes with weight 100.
  bool arbitrated() const { return compute.has_value() || !priority_source.empty(); }

  // Which variable set each field (for messages and the info dump); empty = default.
  std::string mem_limit_source, group_source, compute_source, priority_source;
};

// Reads a variable; injectable so tests never touch the real environment.
using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;
EnvLookup process_environment();

Result<Settings> load_settings(const EnvLookup& env);

// One option's parser, by environment-variable name (xpu-run validates flags with these).
Status validate_option(std::string_view env_name, std::string_view value);

// The quota for one device of this process, in bytes; nullopt = no quota on this device.
// Fails when the quota exceeds the device or a list names this device twice (by ordinal and UUID).
Result<std::optional<std::uint64_t>> resolve_quota(const Settings& settings, int ordinal,
                                                   const Uuid& uuid, std::uint64_t device_bytes);

// The effective settings, one line each, for the info-level dump and `xpu-run --dry-run`.
std::vector<std::string> describe(const Settings& settings);

// The options table rendered for humans (xpu-run --help).
struct OptionInfo {
  std::string_view env, flag, metavar, accepts, summary;
};
const std::vector<OptionInfo>& option_table();

}  // namespace xpu
