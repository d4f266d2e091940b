// NVML's memory info, virtualised like cuMemGetInfo for devices under a quota, in the layout of
// the generation the caller asked for. Applies in processes that initialised CUDA under the
// shim (PyTorch's OOM message, pynvml inside a training job); other NVML callers see the card.
#include "driver/driver_api.hpp"
#include "handlers/handlers.hpp"
#include "runtime/runtime.hpp"
#include "xpu/memquota/ledger.hpp"
#include "xpu/memquota/view.hpp"

namespace xpu::shim::handlers {
namespace {

std::optional<memquota::MemoryView> view_for(nvmlDevice_t device, std::uint64_t real_free) {
  Runtime& rt = Runtime::get();
  memquota::ProcessAccount* acct = rt.account();
  DriverApi& d = driver_api();
  if (rt.mode() != Mode::enforcing || acct == nullptr || !load_nvml_api() ||
      d.nvml_device_uuid == nullptr)
    return std::nullopt;
  char text[NVML_DEVICE_UUID_V2_BUFFER_SIZE] = {};
  if (d.nvml_device_uuid(device, text, sizeof(text)) != NVML_SUCCESS) return std::nullopt;
  const auto uuid = parse_uuid(text);
  if (!uuid) return std::nullopt;
  const auto index = rt.device_of_uuid(*uuid);
  if (!index) return std::nullopt;
  const std::uint64_t q = acct->quota(*index);
  if (q == memquota::kUnlimited || q == memquota::kQuotaUnset) return std::nullopt;
  return memquota::virtual_view(q, acct->group_usage(*index), real_free);
}

}  // namespace

nvmlReturn_t nvml_memory_info(xpu_nvmlDeviceGetMemoryInfo_t real, nvmlDevice_t device,
                              nvmlMemory_t* memory) {
  const nvmlReturn_t rc = real(device, memory);
  if (rc != NVML_SUCCESS || memory == nullptr) return rc;
  if (const auto v = view_for(device, memory->free)) {
    memory->total = v->total;
    memory->free = v->free;
    memory->used = v->used;
  }
  return rc;
}

nvmlReturn_t nvml_memory_info_v2(xpu_nvmlDeviceGetMemoryInfo_v2_t real, nvmlDevice_t device,
                                 nvmlMemory_v2_t* memory) {
  const nvmlReturn_t rc = real(device, memory);
  if (rc != NVML_SUCCESS || memory == nullptr) return rc;
  if (const auto v = view_for(device, memory->free)) {
    memory->total = v->total;
    memory->reserved = 0;  // the driver's reservation is outside the quota's world
    memory->free = v->free;
    memory->used = v->used;
  }
  return rc;
}

}  // namespace xpu::shim::handlers
