// Checking memory quotas against the GPUs before the command starts, and pinning ordinal keys
// to UUIDs. CUDA ordinals depend on each process's CUDA_VISIBLE_DEVICES, so `--mem 0=10GiB`
// would mean another GPU in a child that narrows it; a UUID means the same GPU everywhere.
//
// The driver is optional: without libcuda.so.1 (a login node, a CI runner) the probe reports
// `unavailable` and the shim performs the same checks at CUDA initialisation.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "xpu/common/result.hpp"
#include "xpu/common/settings.hpp"
#include "xpu/common/uuid.hpp"

namespace xpu::run {

struct ProbedDevice {
  int ordinal = 0;  // as this process (and so the command) sees it
  Uuid uuid;
  std::uint64_t total_bytes = 0;
};

// dlopen("libcuda.so.1") through the normal search path, cuInit(0), and each device's UUID and
// size. Errc::unavailable when there is no driver or no device.
Result<std::vector<ProbedDevice>> probe_devices();

bool has_ordinal_keys(const MemLimitSpec& spec);

// Every visible device's quota fits the device (resolve_quota), and every ordinal key names a
// visible device. The message names the variable, the device and the sizes.
Status check_quotas(const Settings& settings, const std::vector<ProbedDevice>& devices);

// "0=10GiB,GPU-...=5GiB" -> "GPU-<uuid of 0>=10GiB,GPU-...=5GiB". Values are kept verbatim; a
// value without keys ("10GiB", "25%") is returned unchanged. Fails on an ordinal with no device.
Result<std::string> rewrite_ordinal_keys(std::string_view mem_limit,
                                         const std::vector<ProbedDevice>& devices);

}  // namespace xpu::run
