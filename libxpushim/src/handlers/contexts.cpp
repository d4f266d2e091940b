// A context's own footprint (code, stacks, heaps, driver structures: about 0.5 GiB on an H100)
// is device memory the process holds, so it counts toward the quota: measured when the context
// is created, given back when it is destroyed.
#include "driver/driver_api.hpp"
#include "handlers/handlers.hpp"
#include "runtime/runtime.hpp"

namespace xpu::shim::handlers {
namespace {

bool primary_active(CUdevice device) {
  DriverApi& d = driver_api();
  unsigned int flags = 0;
  int active = 0;
  return d.primary_ctx_get_state != nullptr &&
         d.primary_ctx_get_state(device, &flags, &active) == CUDA_SUCCESS && active != 0;
}

}  // namespace

CUresult primary_ctx_retain(PFN_cuDevicePrimaryCtxRetain_v7000 real, CUcontext* ctx,
                            CUdevice device) {
  Runtime& rt = Runtime::get();
  const Mode mode = rt.ensure_initialised();
  if (mode == Mode::misconfigured) return Runtime::kConfigError;
  const auto index = rt.device_of_ordinal(device);
  if (mode != Mode::enforcing || !index || primary_active(device)) return real(ctx, device);
  // This retain creates the primary context.
  const auto before = rt.nvml_device_used(device);
  const CUresult rc = real(ctx, device);
  if (rc != CUDA_SUCCESS) return rc;
  std::lock_guard lock(rt.context_mutex());
  std::uint64_t& recorded = rt.primary_footprints()[static_cast<std::size_t>(*index)];
  if (recorded == 0 && rt.account() != nullptr) {
    recorded = rt.measure_context_footprint(device, *index, before);
    rt.account()->add_context_footprint(*index, recorded);
  }
  return rc;
}

void primary_release_end(CUresult rc, CUdevice device) {
  Runtime& rt = Runtime::get();
  const auto index = rt.device_of_ordinal(device);
  if (rc != CUDA_SUCCESS || !index || rt.account() == nullptr || primary_active(device)) return;
  // The last release (or a reset) destroyed the primary context.
  std::lock_guard lock(rt.context_mutex());
  std::uint64_t& recorded = rt.primary_footprints()[static_cast<std::size_t>(*index)];
  rt.account()->remove_context_footprint(*index, recorded);
  recorded = 0;
}

std::optional<std::uint64_t> context_creation_begin(CUdevice device) {
  Runtime& rt = Runtime::get();
  if (rt.ensure_initialised() != Mode::enforcing) return std::nullopt;
  return rt.nvml_device_used(device);
}

void context_creation_end(CUresult rc, CUcontext ctx, CUdevice device,
                          std::optional<std::uint64_t> before) {
  Runtime& rt = Runtime::get();
  const auto index = rt.device_of_ordinal(device);
  if (rc != CUDA_SUCCESS || ctx == nullptr || !index || rt.account() == nullptr) return;
  const std::uint64_t footprint = rt.measure_context_footprint(device, *index, before);
  std::lock_guard lock(rt.context_mutex());
  rt.context_footprints()[ctx] = {*index, footprint};
  rt.account()->add_context_footprint(*index, footprint);
}

CUresult ctx_destroy(PFN_cuCtxDestroy_v4000 real, CUcontext ctx) {
  const CUresult rc = real(ctx);
  Runtime& rt = Runtime::get();
  if (rc != CUDA_SUCCESS || rt.account() == nullptr) return rc;
  std::lock_guard lock(rt.context_mutex());
  auto& table = rt.context_footprints();
  if (auto it = table.find(ctx); it != table.end()) {
    rt.account()->remove_context_footprint(it->second.first, it->second.second);
    table.erase(it);
  }
  return rc;
}

}  // namespace xpu::shim::handlers
