// Graph memory nodes. Memory for a graph's allocation nodes comes from the device's graph pool
// when the graph is uploaded or first launched, not at the call that built the graph, and the
// driver keeps it until the graph is destroyed and the pool trimmed. So after each of those
// calls the charge follows the pool's RESERVED_MEM_CURRENT. The launch itself is not refused:
// the memory already exists when we can see it; it then counts against every later request.
#include "driver/driver_api.hpp"
#include "handlers/handlers.hpp"
#include "runtime/runtime.hpp"

namespace xpu::shim::handlers {

namespace {

// Charges the graph pool of one device as the driver reports it now.
void settle_graph_memory_of(int ordinal, std::uint32_t device) noexcept {
  memquota::ProcessAccount* acct = Runtime::get().account();
  DriverApi& d = driver_api();
  if (acct == nullptr || d.device_get_graph_mem_attribute == nullptr) return;
  RelaxedCaptureScope relaxed;
  cuuint64_t reserved = 0;
  if (d.device_get_graph_mem_attribute(static_cast<CUdevice>(ordinal),
                                       CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT,
                                       &reserved) == CUDA_SUCCESS)
    acct->settle_graph_memory(device, reserved);
}

}  // namespace

void settle_graph_memory() noexcept {
  int ordinal = 0;
  if (const auto device = Runtime::get().current_device(&ordinal))
    settle_graph_memory_of(ordinal, *device);
}

CUresult graph_memory_trim(PFN_cuDeviceGraphMemTrim_v11040 real, CUdevice device) {
  const CUresult rc = real(device);
  if (rc != CUDA_SUCCESS) return rc;
  if (const auto index = Runtime::get().device_of_ordinal(device))
    settle_graph_memory_of(device, *index);
  return rc;
}

}  // namespace xpu::shim::handlers
