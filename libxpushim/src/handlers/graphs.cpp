// Graph memory nodes. Memory for a graph's allocation nodes comes from the device's graph pool
// when the graph is uploaded or first launched, not at the call that built the graph, and the
// driver keeps it until the graph is destroyed and the pool trimmed. So after each of those
// calls the charge follows the pool's RESERVED_MEM_CURRENT. The launch itself is not refused:
// the memory already exists when we can see it; it then counts against every later request.
#include "driver/driver_api.hpp"
#include "handlers/handlers.hpp"
#include "runtime/runtime.hpp"

namespace xpu::shim::handlers {

void settle_graph_memory() noexcept {
  Runtime& rt = Runtime::get();
  memquota::ProcessAccount* acct = rt.account();
  DriverApi& d = driver_api();
  if (acct == nullptr || d.device_get_graph_mem_attribute == nullptr) return;
  int ordinal = 0;
  const auto device = rt.current_device(&ordinal);
  if (!device) return;
  RelaxedCaptureScope relaxed;
  cuuint64_t reserved = 0;
  if (d.device_get_graph_mem_attribute(static_cast<CUdevice>(ordinal),
                                       CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT,
                                       &reserved) == CUDA_SUCCESS)
    acct->settle_graph_memory(*device, reserved);
}

CUresult graph_memory_trim(PFN_cuDeviceGraphMemTrim_v11040 real, CUdevice device) {
  const CUresult rc = real(device);
  Runtime& rt = Runtime::get();
  memquota::ProcessAccount* acct = rt.account();
  DriverApi& d = driver_api();
  const auto index = rt.device_of_ordinal(device);
  if (rc != CUDA_SUCCESS || acct == nullptr || !index ||
      d.device_get_graph_mem_attribute == nullptr)
    return rc;
  RelaxedCaptureScope relaxed;
  cuuint64_t reserved = 0;
  if (d.device_get_graph_mem_attribute(device, CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT, &reserved) ==
      CUDA_SUCCESS)
    acct->settle_graph_memory(*index, reserved);
  return rc;
}

}  // namespace xpu::shim::handlers
