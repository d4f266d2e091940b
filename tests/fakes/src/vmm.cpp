// Virtual memory management: physical handles (cuMemCreate/cuMemRelease), VA reservations and
// mappings. Only handles located on a DEVICE count as device memory (HOST/HOST_NUMA handles are
// host memory). As with the real driver, a released handle's memory stays in use until its last
// mapping is unmapped. Sizes must be multiples of the granularity (2 MiB).
#include <algorithm>

#include "exports.hpp"
#include "process.hpp"

namespace xpu_fake {
namespace {

// The memory goes back once no handle reference and no mapping is left.
void maybe_free_locked(CUmemGenericAllocationHandle h) {
  auto& handles = proc().vmm_handles;
  auto it = handles.find(h);
  if (it == handles.end()) return;
  if (it->second.user_refs > 0 || it->second.map_refs > 0) return;
  if (it->second.device_memory) uncharge(it->second.device, it->second.size);
  handles.erase(it);
}

bool inside_reservation_locked(CUdeviceptr ptr, uint64_t size) {
  const auto& va = proc().va_ranges;
  auto it = va.upper_bound(ptr);
  if (it == va.begin()) return false;
  --it;
  return ptr >= it->first && ptr + size <= it->first + it->second;
}

}  // namespace
}  // namespace xpu_fake

using namespace xpu_fake;

extern "C" {

XPU_FAKE_EXPORT CUresult cuMemGetAllocationGranularity(size_t* granularity,
                                                       const CUmemAllocationProp* prop,
                                                       CUmemAllocationGranularity_flags option) {
  XPU_FAKE_API(cuMemGetAllocationGranularity, {
    (void)option;  // minimum and recommended are both 2 MiB, as on the H100
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    if (granularity == nullptr || prop == nullptr) return CUDA_ERROR_INVALID_VALUE;
    *granularity = kGranularity;
    return CUDA_SUCCESS;
  });
}

XPU_FAKE_EXPORT CUresult cuMemCreate(CUmemGenericAllocationHandle* handle, size_t size,
                                     const CUmemAllocationProp* prop, unsigned long long flags) {
  XPU_FAKE_API(cuMemCreate, {
    (void)flags;
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    if (handle == nullptr || prop == nullptr || size == 0 || size % kGranularity != 0) {
      return CUDA_ERROR_INVALID_VALUE;
    }
    if (prop->type != CU_MEM_ALLOCATION_TYPE_PINNED) return CUDA_ERROR_INVALID_VALUE;
    bool device_memory = false;
    int dev = 0;
    switch (prop->location.type) {
      case CU_MEM_LOCATION_TYPE_DEVICE:
        if (check_device(prop->location.id) != CUDA_SUCCESS) return CUDA_ERROR_INVALID_DEVICE;
        device_memory = true;
        dev = prop->location.id;
        break;
      case CU_MEM_LOCATION_TYPE_HOST:
      case CU_MEM_LOCATION_TYPE_HOST_NUMA:
      case CU_MEM_LOCATION_TYPE_HOST_NUMA_CURRENT:
        break;
      default:
        return CUDA_ERROR_INVALID_VALUE;
    }
    ProcLock lk;
    if (device_memory && !charge(dev, size)) return CUDA_ERROR_OUT_OF_MEMORY;
    Process& p = proc();
    const CUmemGenericAllocationHandle h = p.next_handle;
    p.next_handle += 0x10;
    p.vmm_handles[h] = VmmHandle{size, dev, device_memory, 1, 0, *prop};
    *handle = h;
    return CUDA_SUCCESS;
  });
}

XPU_FAKE_EXPORT CUresult cuMemRelease(CUmemGenericAllocationHandle handle) {
  XPU_FAKE_API(cuMemRelease, {
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    ProcLock lk;
    auto& handles = proc().vmm_handles;
    auto it = handles.find(handle);
    if (it == handles.end() || it->second.user_refs == 0) return CUDA_ERROR_INVALID_VALUE;
    --it->second.user_refs;
    maybe_free_locked(handle);
    return CUDA_SUCCESS;
  });
}

XPU_FAKE_EXPORT CUresult cuMemRetainAllocationHandle(CUmemGenericAllocationHandle* handle,
                                                     void* addr) {
  XPU_FAKE_API(cuMemRetainAllocationHandle, {
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    if (handle == nullptr) return CUDA_ERROR_INVALID_VALUE;
    ProcLock lk;
    const auto a = reinterpret_cast<CUdeviceptr>(addr);
    auto& maps = proc().mappings;
    auto it = maps.upper_bound(a);
    if (it == maps.begin()) return CUDA_ERROR_INVALID_VALUE;
    --it;
    if (a >= it->first + it->second.first) return CUDA_ERROR_INVALID_VALUE;
    auto h = proc().vmm_handles.find(it->second.second);
    if (h == proc().vmm_handles.end()) return CUDA_ERROR_INVALID_VALUE;
    ++h->second.user_refs;  // the caller must cuMemRelease it again
    *handle = h->first;
    return CUDA_SUCCESS;
  });
}

XPU_FAKE_EXPORT CUresult cuMemGetAllocationPropertiesFromHandle(
    CUmemAllocationProp* prop, CUmemGenericAllocationHandle handle) {
  XPU_FAKE_API(cuMemGetAllocationPropertiesFromHandle, {
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    if (prop == nullptr) return CUDA_ERROR_INVALID_VALUE;
    ProcLock lk;
    auto it = proc().vmm_handles.find(handle);
    if (it == proc().vmm_handles.end()) return CUDA_ERROR_INVALID_VALUE;
    *prop = it->second.prop;
    return CUDA_SUCCESS;
  });
}

XPU_FAKE_EXPORT CUresult cuMemAddressReserve(CUdeviceptr* ptr, size_t size, size_t alignment,
                                             CUdeviceptr addr, unsigned long long flags) {
  XPU_FAKE_API(cuMemAddressReserve, {
    (void)addr;  // the hint is not honoured (allowed by the API)
    (void)flags;
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    if (ptr == nullptr || size == 0 || size % kGranularity != 0) return CUDA_ERROR_INVALID_VALUE;
    if (alignment != 0 && (alignment & (alignment - 1)) != 0) return CUDA_ERROR_INVALID_VALUE;
    ProcLock lk;
    Process& p = proc();
    const uint64_t align = std::max<uint64_t>(alignment, kGranularity);
    p.next_ptr = round_up(p.next_ptr, align);
    const CUdeviceptr va = new_device_address_locked(size);
    p.va_ranges[va] = size;
    *ptr = va;
    return CUDA_SUCCESS;
  });
}

XPU_FAKE_EXPORT CUresult cuMemAddressFree(CUdeviceptr ptr, size_t size) {
  XPU_FAKE_API(cuMemAddressFree, {
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    ProcLock lk;
    auto& va = proc().va_ranges;
    auto it = va.find(ptr);
    if (it == va.end() || it->second != size) return CUDA_ERROR_INVALID_VALUE;
    va.erase(it);
    return CUDA_SUCCESS;
  });
}

XPU_FAKE_EXPORT CUresult cuMemMap(CUdeviceptr ptr, size_t size, size_t offset,
                                  CUmemGenericAllocationHandle handle, unsigned long long flags) {
  XPU_FAKE_API(cuMemMap, {
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    if (flags != 0 || size == 0 || size % kGranularity != 0 || offset % kGranularity != 0) {
      return CUDA_ERROR_INVALID_VALUE;
    }
    ProcLock lk;
    Process& p = proc();
    auto h = p.vmm_handles.find(handle);
    if (h == p.vmm_handles.end() || h->second.user_refs == 0) return CUDA_ERROR_INVALID_HANDLE;
    if (offset + size > h->second.size) return CUDA_ERROR_INVALID_VALUE;
    if (!inside_reservation_locked(ptr, size)) return CUDA_ERROR_INVALID_VALUE;
    // No overlap with an existing mapping.
    auto next = p.mappings.lower_bound(ptr);
    if (next != p.mappings.end() && next->first < ptr + size) return CUDA_ERROR_INVALID_VALUE;
    if (next != p.mappings.begin()) {
      auto prev = std::prev(next);
      if (prev->first + prev->second.first > ptr) return CUDA_ERROR_INVALID_VALUE;
    }
    p.mappings[ptr] = {size, handle};
    ++h->second.map_refs;
    return CUDA_SUCCESS;
  });
}

XPU_FAKE_EXPORT CUresult cuMemUnmap(CUdeviceptr ptr, size_t size) {
  XPU_FAKE_API(cuMemUnmap, {
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    ProcLock lk;
    auto& maps = proc().mappings;
    bool any = false;
    for (auto it = maps.lower_bound(ptr); it != maps.end() && it->first < ptr + size;) {
      const CUmemGenericAllocationHandle h = it->second.second;
      it = maps.erase(it);
      auto hv = proc().vmm_handles.find(h);
      if (hv != proc().vmm_handles.end()) --hv->second.map_refs;
      maybe_free_locked(h);
      any = true;
    }
    return any ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
  });
}

XPU_FAKE_EXPORT CUresult cuMemSetAccess(CUdeviceptr ptr, size_t size, const CUmemAccessDesc* desc,
                                        size_t count) {
  XPU_FAKE_API(cuMemSetAccess, {
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    if (desc == nullptr || count == 0 || size == 0) return CUDA_ERROR_INVALID_VALUE;
    ProcLock lk;
    if (!inside_reservation_locked(ptr, size)) return CUDA_ERROR_INVALID_VALUE;
    return CUDA_SUCCESS;
  });
}

}  // extern "C"
