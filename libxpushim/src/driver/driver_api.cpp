#include "driver/driver_api.hpp"

#include <mutex>

#include "driver/loader.hpp"

namespace xpu::shim {
namespace {

template <class Fn>
void bind(Fn& slot, void* library, const char* name) {
  if (slot == nullptr) slot = reinterpret_cast<Fn>(real_dlsym()(library, name));
}

}  // namespace

DriverApi& driver_api() noexcept {
  static DriverApi api;
  return api;
}

bool load_driver_api() noexcept {
  static std::once_flag once;
  static bool ok = false;
  std::call_once(once, [] {
    void* lib = cuda_library();
    if (lib == nullptr) return;
    DriverApi& d = driver_api();
    bind(d.device_get_count, lib, "cuDeviceGetCount");
    bind(d.device_get, lib, "cuDeviceGet");
    bind(d.device_get_uuid, lib, "cuDeviceGetUuid_v2");
    bind(d.ctx_get_device, lib, "cuCtxGetDevice");
    bind(d.ctx_get_current, lib, "cuCtxGetCurrent");
    bind(d.event_create, lib, "cuEventCreate");
    bind(d.event_destroy, lib, "cuEventDestroy_v2");
    bind(d.event_record, lib, "cuEventRecord");
    bind(d.event_query, lib, "cuEventQuery");
    bind(d.event_synchronize, lib, "cuEventSynchronize");
    bind(d.event_elapsed, lib, "cuEventElapsedTime_v2");
    bind(d.event_elapsed, lib, "cuEventElapsedTime");  // drivers before 12.8
    bind(d.primary_ctx_get_state, lib, "cuDevicePrimaryCtxGetState");
    bind(d.stream_is_capturing, lib, "cuStreamIsCapturing");
    bind(d.stream_is_capturing_ptsz, lib, "cuStreamIsCapturing_ptsz");
    bind(d.exchange_capture_mode, lib, "cuThreadExchangeStreamCaptureMode");
    bind(d.device_get_mem_pool, lib, "cuDeviceGetMemPool");
    bind(d.mem_pool_get_attribute, lib, "cuMemPoolGetAttribute");
    bind(d.device_get_graph_mem_attribute, lib, "cuDeviceGetGraphMemAttribute");
    bind(d.array_get_memory_requirements, lib, "cuArrayGetMemoryRequirements");
    bind(d.mipmapped_array_get_memory_requirements, lib, "cuMipmappedArrayGetMemoryRequirements");
    ok = d.device_get_count != nullptr && d.device_get != nullptr && d.device_get_uuid != nullptr &&
         d.ctx_get_device != nullptr;
    d.events_usable = d.ctx_get_current != nullptr && d.event_create != nullptr &&
                      d.event_destroy != nullptr && d.event_record != nullptr &&
                      d.event_query != nullptr && d.event_synchronize != nullptr &&
                      d.event_elapsed != nullptr && d.stream_is_capturing != nullptr;
  });
  return ok;
}

bool load_nvml_api() noexcept {
  static std::once_flag once;
  static bool ok = false;
  std::call_once(once, [] {
    void* lib = nvml_library();
    if (lib == nullptr) return;
    DriverApi& d = driver_api();
    bind(d.nvml_init, lib, "nvmlInit_v2");
    bind(d.nvml_device_by_uuid, lib, "nvmlDeviceGetHandleByUUID");
    bind(d.nvml_device_uuid, lib, "nvmlDeviceGetUUID");
    bind(d.nvml_running_processes, lib, "nvmlDeviceGetComputeRunningProcesses_v3");
    ok = d.nvml_init != nullptr && d.nvml_device_by_uuid != nullptr &&
         d.nvml_running_processes != nullptr && d.nvml_init() == NVML_SUCCESS;
  });
  return ok;
}

bool stream_capturing(CUstream stream, bool per_thread) noexcept {
  DriverApi& d = driver_api();
  const auto query = per_thread ? d.stream_is_capturing_ptsz : d.stream_is_capturing;
  CUstreamCaptureStatus status = CU_STREAM_CAPTURE_STATUS_NONE;
  return query == nullptr || query(stream, &status) != CUDA_SUCCESS ||
         status != CU_STREAM_CAPTURE_STATUS_NONE;
}

RelaxedCaptureScope::RelaxedCaptureScope() noexcept {
  const auto exchange = driver_api().exchange_capture_mode;
  if (exchange == nullptr) return;
  CUstreamCaptureMode mode = CU_STREAM_CAPTURE_MODE_RELAXED;
  if (exchange(&mode) == CUDA_SUCCESS) {
    saved_ = mode;
    active_ = true;
  }
}

RelaxedCaptureScope::~RelaxedCaptureScope() {
  if (active_) driver_api().exchange_capture_mode(&saved_);
}

}  // namespace xpu::shim
