// Driver and NVML functions the shim calls for its own purposes (device enumeration, capture
// checks, pool and graph attributes, context footprints). They are not hooked: these are the
// driver's own functions, resolved from libcuda.so.1 / libnvidia-ml.so.1. A plain table of
// function pointers, so the handler tests can fill it with fakes.
#pragma once

#include "cuda_api.hpp"
#include "xpu/vendor/nvml_abi.h"

namespace xpu::shim {

struct DriverApi {
  PFN_cuDeviceGetCount_v2000 device_get_count = nullptr;
  PFN_cuDeviceGet_v2000 device_get = nullptr;
  PFN_cuDeviceGetUuid_v11040 device_get_uuid = nullptr;
  PFN_cuCtxGetDevice_v2000 ctx_get_device = nullptr;
  PFN_cuCtxGetCurrent_v4000 ctx_get_current = nullptr;
  PFN_cuEventCreate_v2000 event_create = nullptr;
  PFN_cuEventDestroy_v4000 event_destroy = nullptr;
  PFN_cuEventRecord_v2000 event_record = nullptr;  // per-thread streams are passed explicitly
  PFN_cuEventQuery_v2000 event_query = nullptr;
  PFN_cuEventSynchronize_v2000 event_synchronize = nullptr;
  PFN_cuEventElapsedTime_v12080 event_elapsed = nullptr;
  bool events_usable = false;  // all of the above and the capture query: launches can be tracked
  PFN_cuDevicePrimaryCtxGetState_v7000 primary_ctx_get_state = nullptr;
  PFN_cuStreamIsCapturing_v10000 stream_is_capturing = nullptr;
  PFN_cuStreamIsCapturing_v10000_ptsz stream_is_capturing_ptsz = nullptr;
  PFN_cuThreadExchangeStreamCaptureMode_v10010 exchange_capture_mode = nullptr;
  PFN_cuDeviceGetMemPool_v11020 device_get_mem_pool = nullptr;
  PFN_cuMemPoolGetAttribute_v11020 mem_pool_get_attribute = nullptr;
  PFN_cuDeviceGetGraphMemAttribute_v11040 device_get_graph_mem_attribute = nullptr;
  PFN_cuArrayGetMemoryRequirements_v11060 array_get_memory_requirements = nullptr;
  PFN_cuMipmappedArrayGetMemoryRequirements_v11060 mipmapped_array_get_memory_requirements =
      nullptr;

  xpu_nvmlInit_v2_t nvml_init = nullptr;
  xpu_nvmlDeviceGetHandleByUUID_t nvml_device_by_uuid = nullptr;
  xpu_nvmlDeviceGetUUID_t nvml_device_uuid = nullptr;
  xpu_nvmlDeviceGetComputeRunningProcesses_v3_t nvml_running_processes = nullptr;
};

// The process-wide table; load_driver_api() fills it from the real libraries (idempotent).
DriverApi& driver_api() noexcept;
bool load_driver_api() noexcept;
bool load_nvml_api() noexcept;

// Is work on this stream being captured into a graph? `per_thread`: the caller used a _ptsz
// export, so stream 0 is its per-thread stream. An error (e.g. the legacy stream while another
// stream captures) counts as yes: the call belongs to a capture's world, stay out of its way.
bool stream_capturing(CUstream stream, bool per_thread) noexcept;

// Shim-internal driver calls run in RELAXED capture mode: otherwise one of them, made while
// another thread captures a graph in GLOBAL mode (PyTorch's default), fails and invalidates the
// application's capture.
class RelaxedCaptureScope {
 public:
  RelaxedCaptureScope() noexcept;
  ~RelaxedCaptureScope();
  RelaxedCaptureScope(const RelaxedCaptureScope&) = delete;
  RelaxedCaptureScope& operator=(const RelaxedCaptureScope&) = delete;

 private:
  CUstreamCaptureMode saved_ = CU_STREAM_CAPTURE_MODE_RELAXED;
  bool active_ = false;
};

}  // namespace xpu::shim
