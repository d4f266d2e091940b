// Handlers: the code behind each row of hooks/*.def. A handler receives the real driver function
// and the caller's arguments, translates CUDA types to plain values, asks memquota (and later
// timeslice) what to do, and calls the real function. Over-quota allocations return exactly
// CUDA_ERROR_OUT_OF_MEMORY, which every framework already handles (PyTorch frees its cache and
// retries). Templates here only adapt the ABI variants (v1 32-bit sizes, _ptsz streams) to the
// plain functions in the .cpp files.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <tuple>

#include "cuda_api.hpp"
#include "xpu/memquota/allocation_map.hpp"
#include "xpu/vendor/nvml_abi.h"

namespace xpu::shim::handlers {

enum class Stream { legacy, per_thread };  // which variant the caller used

// ---- entry points (entry.cpp) ----
CUresult get_proc_address(PFN_cuGetProcAddress_v11030 real, const char* symbol, void** pfn,
                          int version, cuuint64_t flags);
CUresult get_proc_address(PFN_cuGetProcAddress_v12000 real, const char* symbol, void** pfn,
                          int version, cuuint64_t flags, CUdriverProcAddressQueryResult* status);
CUresult init(PFN_cuInit_v2000 real, unsigned int flags);

// ---- plain-value core (memory.cpp) ----
struct Ticket {
  bool accounted = false;  // false: not enforcing, pass through without bookkeeping
  std::uint32_t device = 0;
  std::uint64_t bytes = 0;
};
// nullopt: refuse with `*refusal` (out of memory, or the configuration error).
std::optional<Ticket> begin_alloc(std::uint64_t bytes, std::optional<int> ordinal,
                                  CUresult* refusal);
void end_alloc(const Ticket& t, CUresult rc, memquota::AllocKind kind, std::uint64_t handle,
               std::uint64_t actual_bytes);
// Frees: take the record before the driver call, settle after it.
std::optional<memquota::Allocation> begin_free(memquota::AllocKind kind, std::uint64_t handle);
void end_free(const std::optional<memquota::Allocation>& a, CUresult rc, memquota::AllocKind kind,
              std::uint64_t handle);

// ---- direct device memory ----
template <class Ptr, class Size>
CUresult mem_alloc(CUresult (*real)(Ptr*, Size), Ptr* dptr, Size bytes) {
  CUresult refusal = CUDA_SUCCESS;
  const auto t = begin_alloc(bytes, std::nullopt, &refusal);
  if (!t) return refusal;
  const CUresult rc = real(dptr, bytes);
  end_alloc(*t, rc, memquota::AllocKind::device_pointer, dptr != nullptr ? *dptr : 0, bytes);
  return rc;
}

std::uint64_t pitched_estimate(std::uint64_t width, std::uint64_t height);
template <class Ptr, class Size>
CUresult mem_alloc_pitch(CUresult (*real)(Ptr*, Size*, Size, Size, unsigned int), Ptr* dptr,
                         Size* pitch, Size width, Size height, unsigned int element_bytes) {
  CUresult refusal = CUDA_SUCCESS;
  const auto t = begin_alloc(pitched_estimate(width, height), std::nullopt, &refusal);
  if (!t) return refusal;
  const CUresult rc = real(dptr, pitch, width, height, element_bytes);
  const std::uint64_t actual = rc == CUDA_SUCCESS && pitch != nullptr
                                   ? static_cast<std::uint64_t>(*pitch) * height
                                   : t->bytes;
  end_alloc(*t, rc, memquota::AllocKind::device_pointer, dptr != nullptr ? *dptr : 0, actual);
  return rc;
}

CUresult mem_alloc_managed(PFN_cuMemAllocManaged_v6000 real, CUdeviceptr* dptr, size_t bytes,
                           unsigned int flags);

template <class Ptr>
CUresult mem_free(CUresult (*real)(Ptr), Ptr dptr) {
  const auto a = begin_free(memquota::AllocKind::device_pointer, dptr);
  const CUresult rc = real(dptr);
  end_free(a, rc, memquota::AllocKind::device_pointer, dptr);
  return rc;
}

// ---- pools (pools.cpp) ----
CUresult pool_alloc(CUdeviceptr* dptr, size_t bytes, CUmemoryPool pool, bool default_pool,
                    CUstream stream, Stream variant, const std::function<CUresult()>& call);
CUresult pool_free(CUdeviceptr dptr, CUstream stream, Stream variant,
                   const std::function<CUresult()>& call);

template <Stream S, class Fn>
CUresult mem_alloc_async(Fn real, CUdeviceptr* dptr, size_t bytes, CUstream stream) {
  return pool_alloc(dptr, bytes, nullptr, true, stream, S,
                    [&] { return real(dptr, bytes, stream); });
}
template <Stream S, class Fn>
CUresult mem_alloc_from_pool(Fn real, CUdeviceptr* dptr, size_t bytes, CUmemoryPool pool,
                             CUstream stream) {
  return pool_alloc(dptr, bytes, pool, false, stream, S,
                    [&] { return real(dptr, bytes, pool, stream); });
}
template <Stream S, class Fn>
CUresult mem_free_async(Fn real, CUdeviceptr dptr, CUstream stream) {
  return pool_free(dptr, stream, S, [&] { return real(dptr, stream); });
}
CUresult mem_pool_trim(PFN_cuMemPoolTrimTo_v11020 real, CUmemoryPool pool, size_t keep);
CUresult mem_pool_destroy(PFN_cuMemPoolDestroy_v11020 real, CUmemoryPool pool);

// ---- virtual memory management (memory.cpp) ----
CUresult mem_create(PFN_cuMemCreate_v10020 real, CUmemGenericAllocationHandle* handle, size_t size,
                    const CUmemAllocationProp* prop, unsigned long long flags);
CUresult mem_release(PFN_cuMemRelease_v10020 real, CUmemGenericAllocationHandle handle);

// ---- arrays (arrays.cpp) ----
std::uint64_t estimate_array_bytes(std::size_t width, std::size_t height, std::size_t depth,
                                   CUarray_format format, unsigned int channels);
std::uint64_t array_requirement(CUarray array, std::uint64_t fallback);
std::uint64_t mipmapped_requirement(CUmipmappedArray array, std::uint64_t fallback);

template <class Desc>
CUresult array_create(CUresult (*real)(CUarray*, const Desc*), CUarray* handle, const Desc* desc) {
  std::uint64_t estimate = 0;
  if (desc != nullptr) {
    std::size_t depth = 1;
    if constexpr (requires { desc->Depth; }) depth = desc->Depth;
    estimate =
        estimate_array_bytes(desc->Width, desc->Height, depth, desc->Format, desc->NumChannels);
  }
  CUresult refusal = CUDA_SUCCESS;
  const auto t = begin_alloc(estimate, std::nullopt, &refusal);
  if (!t) return refusal;
  const CUresult rc = real(handle, desc);
  const CUarray made = rc == CUDA_SUCCESS && handle != nullptr ? *handle : nullptr;
  end_alloc(*t, rc, memquota::AllocKind::array, reinterpret_cast<std::uint64_t>(made),
            made != nullptr && t->accounted ? array_requirement(made, estimate) : estimate);
  return rc;
}
CUresult mipmapped_array_create(PFN_cuMipmappedArrayCreate_v5000 real, CUmipmappedArray* handle,
                                const CUDA_ARRAY3D_DESCRIPTOR* desc, unsigned int levels);
CUresult array_destroy(PFN_cuArrayDestroy_v2000 real, CUarray array);
CUresult mipmapped_array_destroy(PFN_cuMipmappedArrayDestroy_v5000 real, CUmipmappedArray array);

// ---- kernel and graph launches: the compute gate (launches.cpp) ----
// begin: may wait for the device; end: tracks the launch's completion when the gate asked to.
// The per-thread default stream (stream 0 through a _ptsz export) is made explicit, so events
// recorded for it land on the same stream.
struct LaunchTicket {
  void* gate = nullptr;  // compute::DeviceGate*; null: not arbitrated, nothing to do after
  bool tracked = false;
  CUstream stream = nullptr;
};
LaunchTicket launch_begin(CUstream stream, Stream variant) noexcept;
void launch_end(const LaunchTicket& ticket, CUresult rc) noexcept;

// cuLaunchKernel and cuLaunchCooperativeKernel: the stream is their 9th parameter.
template <Stream S, class Fn, class... A>
CUresult launch_kernel(Fn real, A... args) {
  const LaunchTicket t = launch_begin(std::get<8>(std::tie(args...)), S);
  const CUresult rc = real(args...);
  launch_end(t, rc);
  return rc;
}
template <Stream S, class Fn>
CUresult launch_kernel_ex(Fn real, const CUlaunchConfig* config, CUfunction f, void** params,
                          void** extra) {
  if (config == nullptr) return real(config, f, params, extra);  // the driver's own error
  const LaunchTicket t = launch_begin(config->hStream, S);
  const CUresult rc = real(config, f, params, extra);
  launch_end(t, rc);
  return rc;
}

// ---- graph memory (graphs.cpp) ----
void settle_graph_memory() noexcept;
template <class Fn, class... A>
CUresult graph_memory_event(Fn real, A... args) {
  const CUresult rc = real(args...);
  if (rc == CUDA_SUCCESS) settle_graph_memory();
  return rc;
}
CUresult graph_memory_trim(PFN_cuDeviceGraphMemTrim_v11040 real, CUdevice device);
// cuGraphLaunch: gated like a kernel, then its memory settled.
template <Stream S, class Fn>
CUresult graph_launch(Fn real, CUgraphExec exec, CUstream stream) {
  const LaunchTicket t = launch_begin(stream, S);
  const CUresult rc = real(exec, stream);
  launch_end(t, rc);
  if (rc == CUDA_SUCCESS) settle_graph_memory();
  return rc;
}

// ---- contexts (contexts.cpp) ----
CUresult primary_ctx_retain(PFN_cuDevicePrimaryCtxRetain_v7000 real, CUcontext* ctx,
                            CUdevice device);
void primary_release_end(CUresult rc, CUdevice device);
template <class Fn>
CUresult primary_ctx_release(Fn real, CUdevice device) {
  const CUresult rc = real(device);
  primary_release_end(rc, device);
  return rc;
}
std::optional<std::uint64_t> context_creation_begin(CUdevice device);
void context_creation_end(CUresult rc, CUcontext ctx, CUdevice device,
                          std::optional<std::uint64_t> before);
template <class Fn, class... A>
CUresult ctx_create(Fn real, CUcontext* ctx, A... args) {
  const CUdevice device = static_cast<CUdevice>(std::get<sizeof...(A) - 1>(std::tie(args...)));
  const auto before = context_creation_begin(device);
  const CUresult rc = real(ctx, args...);
  context_creation_end(rc, ctx != nullptr ? *ctx : nullptr, device, before);
  return rc;
}
CUresult ctx_destroy(PFN_cuCtxDestroy_v4000 real, CUcontext ctx);

// ---- the virtual view (info.cpp) ----
CUresult view_mem_get_info(std::uint64_t* free, std::uint64_t* total);
template <class Size>
CUresult mem_get_info(CUresult (*real)(Size*, Size*), Size* free, Size* total) {
  // Ask the driver first with the caller's own pointers: NULL handling stays the driver's.
  const CUresult rc = real(free, total);
  if (rc != CUDA_SUCCESS) return rc;
  std::uint64_t f = 0, t = 0;
  if (view_mem_get_info(&f, &t) != CUDA_SUCCESS) return rc;
  constexpr auto cap = static_cast<std::uint64_t>(std::numeric_limits<Size>::max());
  if (free != nullptr) *free = static_cast<Size>(f < cap ? f : cap);
  if (total != nullptr) *total = static_cast<Size>(t < cap ? t : cap);
  return rc;
}
std::optional<std::uint64_t> quota_of_ordinal(int ordinal);
template <class Size>
CUresult device_total_mem(CUresult (*real)(Size*, CUdevice), Size* bytes, CUdevice device) {
  const CUresult rc = real(bytes, device);
  if (rc != CUDA_SUCCESS || bytes == nullptr) return rc;
  if (const auto q = quota_of_ordinal(device)) {
    constexpr auto cap = static_cast<std::uint64_t>(std::numeric_limits<Size>::max());
    *bytes = static_cast<Size>(*q < cap ? *q : cap);
  }
  return rc;
}

// ---- NVML (nvml.cpp) ----
nvmlReturn_t nvml_memory_info(xpu_nvmlDeviceGetMemoryInfo_t real, nvmlDevice_t device,
                              nvmlMemory_t* memory);
nvmlReturn_t nvml_memory_info_v2(xpu_nvmlDeviceGetMemoryInfo_v2_t real, nvmlDevice_t device,
                                 nvmlMemory_v2_t* memory);

}  // namespace xpu::shim::handlers
