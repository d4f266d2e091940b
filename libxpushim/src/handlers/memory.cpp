// Direct device memory and VMM: admission before the driver call, settlement after it.
#include "handlers/handlers.hpp"
#include "runtime/runtime.hpp"
#include "xpu/memquota/view.hpp"

namespace xpu::shim::handlers {

using memquota::AllocKind;

std::uint64_t pitched_estimate(std::uint64_t width, std::uint64_t height) {
  return memquota::pitched_bytes(width, height);
}

std::optional<Ticket> begin_alloc(std::uint64_t bytes, std::optional<int> ordinal,
                                  CUresult* refusal) {
  Runtime& rt = Runtime::get();
  const Mode mode = rt.ensure_initialised();
  if (mode == Mode::misconfigured) {
    *refusal = Runtime::kConfigError;
    return std::nullopt;
  }
  memquota::ProcessAccount* acct = rt.account();
  if (mode != Mode::enforcing || acct == nullptr || bytes == 0) return Ticket{};
  const auto device = ordinal ? rt.device_of_ordinal(*ordinal) : rt.current_device();
  if (!device) return Ticket{};  // no context: the driver itself will refuse the call
  if (!rt.admit([&] { return acct->reserve(*device, bytes); })) {
    *refusal = CUDA_ERROR_OUT_OF_MEMORY;
    return std::nullopt;
  }
  return Ticket{true, *device, bytes};
}

void end_alloc(const Ticket& t, CUresult rc, AllocKind kind, std::uint64_t handle,
               std::uint64_t actual_bytes) {
  if (!t.accounted) return;
  memquota::ProcessAccount* acct = Runtime::get().account();
  if (acct == nullptr) return;
  if (rc != CUDA_SUCCESS) {
    acct->cancel(t.device, t.bytes);
    return;
  }
  try {
    acct->commit(kind, handle, t.device, t.bytes, actual_bytes);
  } catch (...) {
    // Out of host memory for the record: the bytes stay charged (safe side) but the free will
    // not find them. Logged once by the export's fail-open path would re-run the call, so not
    // rethrown.
  }
}

std::optional<memquota::Allocation> begin_free(AllocKind kind, std::uint64_t handle) {
  memquota::ProcessAccount* acct = Runtime::get().account();
  if (acct == nullptr || handle == 0) return std::nullopt;
  return acct->take(kind, handle);
}

void end_free(const std::optional<memquota::Allocation>& a, CUresult rc, AllocKind kind,
              std::uint64_t handle) {
  if (!a) return;
  memquota::ProcessAccount* acct = Runtime::get().account();
  if (acct == nullptr) return;
  if (rc == CUDA_SUCCESS) {
    acct->credit(*a);
  } else {
    acct->restore(kind, handle, *a);
  }
}

CUresult mem_alloc_managed(PFN_cuMemAllocManaged_v6000 real, CUdeviceptr* dptr, size_t bytes,
                           unsigned int flags) {
  // Managed memory can migrate to the host, but it is backed by device memory whenever the GPU
  // touches it; charging it fully is the only bound that holds under every access pattern.
  CUresult refusal = CUDA_SUCCESS;
  const auto t = begin_alloc(bytes, std::nullopt, &refusal);
  if (!t) return refusal;
  const CUresult rc = real(dptr, bytes, flags);
  end_alloc(*t, rc, AllocKind::device_pointer, dptr != nullptr ? *dptr : 0, bytes);
  return rc;
}

CUresult mem_create(PFN_cuMemCreate_v10020 real, CUmemGenericAllocationHandle* handle, size_t size,
                    const CUmemAllocationProp* prop, unsigned long long flags) {
  // Only device-located physical memory counts; host and host-NUMA locations are host memory
  // (NCCL and vLLM create those too).
  if (prop == nullptr || prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE)
    return real(handle, size, prop, flags);
  CUresult refusal = CUDA_SUCCESS;
  const auto t = begin_alloc(size, prop->location.id, &refusal);
  if (!t) return refusal;
  const CUresult rc = real(handle, size, prop, flags);
  end_alloc(*t, rc, AllocKind::vmm_handle, handle != nullptr ? *handle : 0, size);
  return rc;
}

CUresult mem_release(PFN_cuMemRelease_v10020 real, CUmemGenericAllocationHandle handle) {
  // Handles we did not charge (imports, retained handles, host memory) pass through untouched.
  const auto a = begin_free(AllocKind::vmm_handle, handle);
  const CUresult rc = real(handle);
  end_free(a, rc, AllocKind::vmm_handle, handle);
  return rc;
}

}  // namespace xpu::shim::handlers
