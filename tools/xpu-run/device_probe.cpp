#include "device_probe.hpp"

#include <dlfcn.h>
#include <fmt/format.h>

#include <cstring>

// As in libxpushim/src/cuda_api.hpp: real export names, no renaming macros.
#define __CUDA_API_VERSION_INTERNAL 1
#include <cuda.h>
#include <cudaTypedefs.h>

namespace xpu::run {
namespace {

Error unavailable(std::string message) { return make_error(Errc::unavailable, std::move(message)); }

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

std::string_view accepts_of(std::string_view env) {
  for (const OptionInfo& row : option_table())
    if (row.env == env) return row.accepts;
  return {};
}

Error with_accepts(const Settings& settings, std::string message) {
  const std::string_view accepts = accepts_of(settings.mem_limit_source);
  if (!accepts.empty()) message += fmt::format(". Accepted: {}", accepts);
  return make_error(Errc::invalid_config, std::move(message));
}

template <class Fn>
Fn symbol(void* lib, const char* name) {
  return reinterpret_cast<Fn>(::dlsym(lib, name));
}

std::string error_name(void* lib, CUresult rc) {
  auto get_name = symbol<PFN_cuGetErrorName_v6000>(lib, "cuGetErrorName");
  const char* name = nullptr;
  if (get_name != nullptr && get_name(rc, &name) == CUDA_SUCCESS && name != nullptr) return name;
  return fmt::format("CUresult {}", static_cast<int>(rc));
}

}  // namespace

Result<std::vector<ProbedDevice>> probe_devices() {
  // Never dlclose'd: unloading a driver that started threads is not safe, and we exec soon.
  void* lib = ::dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    const char* why = ::dlerror();
    return unavailable(fmt::format("no CUDA driver ({})", why ? why : "libcuda.so.1 not found"));
  }
  auto init = symbol<PFN_cuInit_v2000>(lib, "cuInit");
  auto get_count = symbol<PFN_cuDeviceGetCount_v2000>(lib, "cuDeviceGetCount");
  auto get_device = symbol<PFN_cuDeviceGet_v2000>(lib, "cuDeviceGet");
  auto get_uuid = symbol<PFN_cuDeviceGetUuid_v11040>(lib, "cuDeviceGetUuid_v2");
  auto total_mem = symbol<PFN_cuDeviceTotalMem_v3020>(lib, "cuDeviceTotalMem_v2");
  if (!init || !get_count || !get_device || !get_uuid || !total_mem)
    return unavailable("the CUDA driver lacks cuDeviceGetUuid_v2 or another device query");
  if (CUresult rc = init(0); rc != CUDA_SUCCESS)
    return unavailable(fmt::format("cuInit failed ({})", error_name(lib, rc)));
  int count = 0;
  if (CUresult rc = get_count(&count); rc != CUDA_SUCCESS || count <= 0)
    return unavailable(rc != CUDA_SUCCESS
                           ? fmt::format("cuDeviceGetCount failed ({})", error_name(lib, rc))
                           : std::string("no CUDA device is visible"));
  std::vector<ProbedDevice> devices;
  for (int i = 0; i < count; ++i) {
    CUdevice dev = 0;
    CUuuid raw{};
    std::size_t bytes = 0;
    CUresult rc = get_device(&dev, i);
    if (rc == CUDA_SUCCESS) rc = get_uuid(&raw, dev);
    if (rc == CUDA_SUCCESS) rc = total_mem(&bytes, dev);
    if (rc != CUDA_SUCCESS)
      return unavailable(fmt::format("querying device {} failed ({})", i, error_name(lib, rc)));
    ProbedDevice d;
    d.ordinal = i;
    static_assert(sizeof(raw.bytes) == sizeof(d.uuid.bytes));
    std::memcpy(d.uuid.bytes.data(), raw.bytes, sizeof(raw.bytes));
    d.total_bytes = bytes;
    devices.push_back(d);
  }
  return devices;
}

bool has_ordinal_keys(const MemLimitSpec& spec) {
  for (const auto& [key, quota] : spec.devices)
    if (!key.uuid) return true;
  return false;
}

Status check_quotas(const Settings& settings, const std::vector<ProbedDevice>& devices) {
  for (const auto& [key, quota] : settings.mem_limit.devices) {
    if (key.uuid || key.ordinal < static_cast<int>(devices.size())) continue;
    const std::string visible =
        devices.empty() ? std::string("no GPU is visible")
                        : fmt::format("the visible GPUs are 0-{} (after CUDA_VISIBLE_DEVICES)",
                                      devices.size() - 1);
    return with_accepts(settings, fmt::format("{} names device {}, but {}",
                                              settings.mem_limit_source, key.ordinal, visible));
  }
  for (const ProbedDevice& d : devices) {
    auto q = resolve_quota(settings, d.ordinal, d.uuid, d.total_bytes);
    if (!q) return with_accepts(settings, q.error().message);
  }
  return Ok{};
}

Result<std::string> rewrite_ordinal_keys(std::string_view mem_limit,
                                         const std::vector<ProbedDevice>& devices) {
  if (mem_limit.find('=') == std::string_view::npos) return std::string(mem_limit);
  std::string out;
  for (;;) {
    const auto comma = mem_limit.find(',');
    const std::string_view entry = mem_limit.substr(0, comma);
    const auto eq = entry.find('=');
    const std::string_view key = entry.substr(0, eq);
    if (!out.empty()) out += ',';
    if (eq != std::string_view::npos && all_digits(key) && key.size() <= 2) {
      const int ordinal = (key.size() == 2 ? (key[0] - '0') * 10 : 0) + (key.back() - '0');
      const ProbedDevice* found = nullptr;
      for (const ProbedDevice& d : devices)
        if (d.ordinal == ordinal) found = &d;
      if (found == nullptr)
        return make_error(Errc::invalid_config,
                          fmt::format("XPU_MEM_LIMIT names device {}, but {} GPU(s) are visible",
                                      ordinal, devices.size()));
      out += to_string(found->uuid);
      out += entry.substr(eq);
    } else {
      out += entry;
    }
    if (comma == std::string_view::npos) break;
    mem_limit.remove_prefix(comma + 1);
  }
  return out;
}

}  // namespace xpu::run
