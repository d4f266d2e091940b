// Device memory without pools: cuMemAlloc[_v2], pitch, managed, free, cuMemGetInfo, host memory
// and CUDA arrays. Device pointers are fake addresses (nothing is backed or ever dereferenced);
// what counts is the charge against the shared device total, which gives CUDA_ERROR_OUT_OF_MEMORY
// exactly when the real device would be full.
#include <algorithm>
#include <climits>
#include <cstdlib>

#include "exports.hpp"
#include "process.hpp"

namespace xpu_fake {
namespace {

CUresult alloc_device(CUdeviceptr* dptr, uint64_t size, AllocKind kind, bool addr32) {
  if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
  if (dptr == nullptr || size == 0) return CUDA_ERROR_INVALID_VALUE;
  ProcLock lk;
  CUctx_st* c = nullptr;
  if (CUresult r = require_ctx_locked(&c); r != CUDA_SUCCESS) return r;
  // cuMemAlloc is "potentially unsafe" during a capture (measured: 900 + invalidation).
  if (CUresult r = unsafe_call_check_locked(); r != CUDA_SUCCESS) return r;
  if (!charge(c->device, size)) return CUDA_ERROR_OUT_OF_MEMORY;
  Process& p = proc();
  CUdeviceptr addr = 0;
  if (addr32) {
    addr = p.next_ptr32;
    p.next_ptr32 += round_up(size, 512);
  } else {
    addr = new_device_address_locked(size);
  }
  p.allocs[addr] = Alloc{size, size, c->device, c, kind, nullptr};
  *dptr = addr;
  return CUDA_SUCCESS;
}

CUresult free_device(CUdeviceptr ptr) {
  if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
  if (ptr == 0) return CUDA_SUCCESS;  // like cudaFree(nullptr)
  ProcLock lk;
  CUctx_st* c = nullptr;
  if (CUresult r = require_ctx_locked(&c); r != CUDA_SUCCESS) return r;
  if (CUresult r = unsafe_call_check_locked(); r != CUDA_SUCCESS) return r;
  Process& p = proc();
  auto it = p.allocs.find(ptr);
  if (it == p.allocs.end()) return CUDA_ERROR_INVALID_VALUE;
  switch (it->second.kind) {
    case AllocKind::kPlain:
    case AllocKind::kManaged:
      uncharge(it->second.device, it->second.charged);
      p.allocs.erase(it);
      return CUDA_SUCCESS;
    case AllocKind::kPool:
      // cuMemFree on a stream-ordered allocation synchronises, then frees it into its pool.
      free_async_locked(ptr);
      trim_pools_after_sync_locked();
      return CUDA_SUCCESS;
    case AllocKind::kGraph:
      p.allocs.erase(it);  // graph memory belongs to the graph's executable
      return CUDA_SUCCESS;
  }
  return CUDA_ERROR_INVALID_VALUE;
}

CUresult mem_info(uint64_t* free_b, uint64_t* total_b) {
  if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
  ProcLock lk;
  CUctx_st* c = nullptr;
  if (CUresult r = require_ctx_locked(&c); r != CUDA_SUCCESS) return r;
  const uint64_t total = shared()->dev[c->device].total;
  const uint64_t used = std::min(device_used(c->device, true), total);
  *free_b = total - used;
  *total_b = total;
  return CUDA_SUCCESS;
}

CUresult host_alloc(void** pp, uint64_t size) {
  if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
  if (pp == nullptr || size == 0) return CUDA_ERROR_INVALID_VALUE;
  ProcLock lk;
  CUctx_st* c = nullptr;
  if (CUresult r = require_ctx_locked(&c); r != CUDA_SUCCESS) return r;
  void* m = aligned_alloc(4096, round_up(size, 4096));  // real, usable host memory
  if (m == nullptr) return CUDA_ERROR_OUT_OF_MEMORY;
  proc().host_allocs[m] = size;
  *pp = m;
  return CUDA_SUCCESS;
}

// Bytes per channel of an array element.
uint64_t format_bytes(CUarray_format f) {
  switch (f) {
    case CU_AD_FORMAT_UNSIGNED_INT8:
    case CU_AD_FORMAT_SIGNED_INT8:
    case CU_AD_FORMAT_UNORM_INT8X1:
    case CU_AD_FORMAT_SNORM_INT8X1:
      return 1;
    case CU_AD_FORMAT_UNSIGNED_INT16:
    case CU_AD_FORMAT_SIGNED_INT16:
    case CU_AD_FORMAT_HALF:
    case CU_AD_FORMAT_UNORM_INT16X1:
    case CU_AD_FORMAT_SNORM_INT16X1:
      return 2;
    case CU_AD_FORMAT_UNSIGNED_INT32:
    case CU_AD_FORMAT_SIGNED_INT32:
    case CU_AD_FORMAT_FLOAT:
      return 4;
    default:
      return 1;  // packed/YUV/block-compressed formats: approximated as 1 byte per channel
  }
}

uint64_t level_bytes(uint64_t w, uint64_t h, uint64_t d, const CUDA_ARRAY3D_DESCRIPTOR& desc) {
  return w * std::max<uint64_t>(h, 1) * std::max<uint64_t>(d, 1) *
         std::max<uint64_t>(desc.NumChannels, 1) * format_bytes(desc.Format);
}

bool no_backing(unsigned flags) {
  return (flags & (CUDA_ARRAY3D_DEFERRED_MAPPING | CUDA_ARRAY3D_SPARSE)) != 0;
}

CUresult create_array(CUarray* out, const CUDA_ARRAY3D_DESCRIPTOR& d) {
  if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
  if (out == nullptr || d.Width == 0 || d.NumChannels == 0) return CUDA_ERROR_INVALID_VALUE;
  ProcLock lk;
  CUctx_st* c = nullptr;
  if (CUresult r = require_ctx_locked(&c); r != CUDA_SUCCESS) return r;
  const uint64_t req = round_up(level_bytes(d.Width, d.Height, d.Depth, d), kGranularity);
  const uint64_t charged = no_backing(d.Flags) ? 0 : req;
  if (charged != 0 && !charge(c->device, charged)) return CUDA_ERROR_OUT_OF_MEMORY;
  auto* a = new CUarray_st{c->device, req, charged, c};
  proc().arrays.insert(a);
  *out = a;
  return CUDA_SUCCESS;
}

CUDA_ARRAY3D_DESCRIPTOR from_2d(size_t w, size_t h, CUarray_format f, unsigned ch) {
  CUDA_ARRAY3D_DESCRIPTOR d{};
  d.Width = w;
  d.Height = h;
  d.Depth = 0;
  d.Format = f;
  d.NumChannels = ch;
  d.Flags = 0;
  return d;
}

}  // namespace
}  // namespace xpu_fake

using namespace xpu_fake;

extern "C" {

XPU_FAKE_EXPORT CUresult cuMemAlloc_v2(CUdeviceptr* dptr, size_t bytesize) {
  XPU_FAKE_API(cuMemAlloc_v2, return alloc_device(dptr, bytesize, AllocKind::kPlain, false););
}

// CUDA 2.0 ABI: 32-bit size and 32-bit device pointer (addresses come from a low range).
XPU_FAKE_EXPORT CUresult cuMemAlloc(CUdeviceptr_v1* dptr, unsigned int bytesize) {
  XPU_FAKE_API(cuMemAlloc, {
    if (dptr == nullptr) return CUDA_ERROR_INVALID_VALUE;
    CUdeviceptr p = 0;
    CUresult r = alloc_device(&p, bytesize, AllocKind::kPlain, true);
    if (r == CUDA_SUCCESS) *dptr = static_cast<CUdeviceptr_v1>(p);
    return r;
  });
}

XPU_FAKE_EXPORT CUresult cuMemAllocPitch_v2(CUdeviceptr* dptr, size_t* pPitch, size_t WidthInBytes,
                                            size_t Height, unsigned int ElementSizeBytes) {
  XPU_FAKE_API(cuMemAllocPitch_v2, {
    if (pPitch == nullptr || WidthInBytes == 0 || Height == 0) return CUDA_ERROR_INVALID_VALUE;
    if (ElementSizeBytes != 4 && ElementSizeBytes != 8 && ElementSizeBytes != 16) {
      return CUDA_ERROR_INVALID_VALUE;
    }
    const uint64_t pitch = round_up(WidthInBytes, kPitchAlign);
    CUresult r = alloc_device(dptr, pitch * Height, AllocKind::kPlain, false);
    if (r == CUDA_SUCCESS) *pPitch = pitch;
    return r;
  });
}

XPU_FAKE_EXPORT CUresult cuMemAllocPitch(CUdeviceptr_v1* dptr, unsigned int* pPitch,
                                         unsigned int WidthInBytes, unsigned int Height,
                                         unsigned int ElementSizeBytes) {
  XPU_FAKE_API(cuMemAllocPitch, {
    if (dptr == nullptr || pPitch == nullptr || WidthInBytes == 0 || Height == 0) {
      return CUDA_ERROR_INVALID_VALUE;
    }
    if (ElementSizeBytes != 4 && ElementSizeBytes != 8 && ElementSizeBytes != 16) {
      return CUDA_ERROR_INVALID_VALUE;
    }
    const uint64_t pitch = round_up(WidthInBytes, kPitchAlign);
    CUdeviceptr p = 0;
    CUresult r = alloc_device(&p, pitch * Height, AllocKind::kPlain, true);
    if (r == CUDA_SUCCESS) {
      *dptr = static_cast<CUdeviceptr_v1>(p);
      *pPitch = static_cast<unsigned int>(pitch);
    }
    return r;
  });
}

// Managed memory counts fully as device memory (the simulator has no page migration).
XPU_FAKE_EXPORT CUresult cuMemAllocManaged(CUdeviceptr* dptr, size_t bytesize, unsigned int flags) {
  XPU_FAKE_API(cuMemAllocManaged, {
    if (flags != CU_MEM_ATTACH_GLOBAL && flags != CU_MEM_ATTACH_HOST) {
      return CUDA_ERROR_INVALID_VALUE;
    }
    return alloc_device(dptr, bytesize, AllocKind::kManaged, false);
  });
}

XPU_FAKE_EXPORT CUresult cuMemFree_v2(CUdeviceptr dptr) {
  XPU_FAKE_API(cuMemFree_v2, return free_device(dptr););
}
XPU_FAKE_EXPORT CUresult cuMemFree(CUdeviceptr_v1 dptr) {
  XPU_FAKE_API(cuMemFree, return free_device(dptr););
}

XPU_FAKE_EXPORT CUresult cuMemGetInfo_v2(size_t* free, size_t* total) {
  XPU_FAKE_API(cuMemGetInfo_v2, {
    if (free == nullptr || total == nullptr) return CUDA_ERROR_INVALID_VALUE;
    uint64_t f = 0;
    uint64_t t = 0;
    CUresult r = mem_info(&f, &t);
    if (r == CUDA_SUCCESS) {
      *free = f;
      *total = t;
    }
    return r;
  });
}

// CUDA 2.0 ABI with 32-bit sizes: both values saturate at UINT_MAX.
XPU_FAKE_EXPORT CUresult cuMemGetInfo(unsigned int* free, unsigned int* total) {
  XPU_FAKE_API(cuMemGetInfo, {
    if (free == nullptr || total == nullptr) return CUDA_ERROR_INVALID_VALUE;
    uint64_t f = 0;
    uint64_t t = 0;
    CUresult r = mem_info(&f, &t);
    if (r == CUDA_SUCCESS) {
      *free = static_cast<unsigned int>(std::min<uint64_t>(f, UINT_MAX));
      *total = static_cast<unsigned int>(std::min<uint64_t>(t, UINT_MAX));
    }
    return r;
  });
}

XPU_FAKE_EXPORT CUresult cuMemAllocHost_v2(void** pp, size_t bytesize) {
  XPU_FAKE_API(cuMemAllocHost_v2, return host_alloc(pp, bytesize););
}
XPU_FAKE_EXPORT CUresult cuMemAllocHost(void** pp, unsigned int bytesize) {
  XPU_FAKE_API(cuMemAllocHost, return host_alloc(pp, bytesize););
}
XPU_FAKE_EXPORT CUresult cuMemHostAlloc(void** pp, size_t bytesize, unsigned int Flags) {
  XPU_FAKE_API(cuMemHostAlloc, {
    (void)Flags;
    return host_alloc(pp, bytesize);
  });
}

XPU_FAKE_EXPORT CUresult cuMemFreeHost(void* p) {
  XPU_FAKE_API(cuMemFreeHost, {
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    ProcLock lk;
    auto& h = proc().host_allocs;
    auto it = h.find(p);
    if (it == h.end()) return CUDA_ERROR_INVALID_VALUE;
    free(it->first);
    h.erase(it);
    return CUDA_SUCCESS;
  });
}

XPU_FAKE_EXPORT CUresult cuArrayCreate_v2(CUarray* pHandle,
                                          const CUDA_ARRAY_DESCRIPTOR* pAllocateArray) {
  XPU_FAKE_API(cuArrayCreate_v2, {
    if (pAllocateArray == nullptr) return CUDA_ERROR_INVALID_VALUE;
    const auto& a = *pAllocateArray;
    return create_array(pHandle, from_2d(a.Width, a.Height, a.Format, a.NumChannels));
  });
}

XPU_FAKE_EXPORT CUresult cuArrayCreate(CUarray* pHandle,
                                       const CUDA_ARRAY_DESCRIPTOR_v1* pAllocateArray) {
  XPU_FAKE_API(cuArrayCreate, {
    if (pAllocateArray == nullptr) return CUDA_ERROR_INVALID_VALUE;
    const auto& a = *pAllocateArray;
    return create_array(pHandle, from_2d(a.Width, a.Height, a.Format, a.NumChannels));
  });
}

XPU_FAKE_EXPORT CUresult cuArray3DCreate_v2(CUarray* pHandle,
                                            const CUDA_ARRAY3D_DESCRIPTOR* pAllocateArray) {
  XPU_FAKE_API(cuArray3DCreate_v2, {
    if (pAllocateArray == nullptr) return CUDA_ERROR_INVALID_VALUE;
    return create_array(pHandle, *pAllocateArray);
  });
}

XPU_FAKE_EXPORT CUresult cuArray3DCreate(CUarray* pHandle,
                                         const CUDA_ARRAY3D_DESCRIPTOR_v1* pAllocateArray) {
  XPU_FAKE_API(cuArray3DCreate, {
    if (pAllocateArray == nullptr) return CUDA_ERROR_INVALID_VALUE;
    const auto& a = *pAllocateArray;
    CUDA_ARRAY3D_DESCRIPTOR d{};
    d.Width = a.Width;
    d.Height = a.Height;
    d.Depth = a.Depth;
    d.Format = a.Format;
    d.NumChannels = a.NumChannels;
    d.Flags = a.Flags;
    return create_array(pHandle, d);
  });
}

XPU_FAKE_EXPORT CUresult cuArrayDestroy(CUarray hArray) {
  XPU_FAKE_API(cuArrayDestroy, {
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    ProcLock lk;
    if (proc().arrays.erase(hArray) == 0) return CUDA_ERROR_INVALID_HANDLE;
    uncharge(hArray->device, hArray->bytes);
    delete hArray;
    return CUDA_SUCCESS;
  });
}

XPU_FAKE_EXPORT CUresult cuMipmappedArrayCreate(CUmipmappedArray* pHandle,
                                                const CUDA_ARRAY3D_DESCRIPTOR* pDesc,
                                                unsigned int numMipmapLevels) {
  XPU_FAKE_API(cuMipmappedArrayCreate, {
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    if (pHandle == nullptr || pDesc == nullptr || numMipmapLevels == 0 || pDesc->Width == 0 ||
        pDesc->NumChannels == 0) {
      return CUDA_ERROR_INVALID_VALUE;
    }
    const auto& d = *pDesc;
    const bool layered = (d.Flags & CUDA_ARRAY3D_LAYERED) != 0;
    uint64_t sum = 0;
    for (unsigned l = 0; l < numMipmapLevels && l < 64; ++l) {
      // Each level halves every dimension (at least 1); layers of a layered array stay.
      const uint64_t w = std::max<uint64_t>(d.Width >> l, 1);
      const uint64_t h = d.Height == 0 ? 0 : std::max<uint64_t>(d.Height >> l, 1);
      const uint64_t z =
          layered ? d.Depth : (d.Depth == 0 ? 0 : std::max<uint64_t>(d.Depth >> l, 1));
      sum += level_bytes(w, h, z, d);
    }
    ProcLock lk;
    CUctx_st* c = nullptr;
    if (CUresult r = require_ctx_locked(&c); r != CUDA_SUCCESS) return r;
    const uint64_t req = round_up(sum, kGranularity);
    const uint64_t charged = no_backing(d.Flags) ? 0 : req;
    if (charged != 0 && !charge(c->device, charged)) return CUDA_ERROR_OUT_OF_MEMORY;
    auto* m = new CUmipmappedArray_st{c->device, req, charged, c};
    proc().mipmaps.insert(m);
    *pHandle = m;
    return CUDA_SUCCESS;
  });
}

XPU_FAKE_EXPORT CUresult cuMipmappedArrayDestroy(CUmipmappedArray hMipmappedArray) {
  XPU_FAKE_API(cuMipmappedArrayDestroy, {
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    ProcLock lk;
    if (proc().mipmaps.erase(hMipmappedArray) == 0) return CUDA_ERROR_INVALID_HANDLE;
    uncharge(hMipmappedArray->device, hMipmappedArray->bytes);
    delete hMipmappedArray;
    return CUDA_SUCCESS;
  });
}

XPU_FAKE_EXPORT CUresult cuArrayGetMemoryRequirements(
    CUDA_ARRAY_MEMORY_REQUIREMENTS* memoryRequirements, CUarray array, CUdevice device) {
  XPU_FAKE_API(cuArrayGetMemoryRequirements, {
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    if (memoryRequirements == nullptr) return CUDA_ERROR_INVALID_VALUE;
    if (CUresult r = check_device(device); r != CUDA_SUCCESS) return r;
    ProcLock lk;
    if (proc().arrays.count(array) == 0) return CUDA_ERROR_INVALID_HANDLE;
    *memoryRequirements = CUDA_ARRAY_MEMORY_REQUIREMENTS{};
    memoryRequirements->size = array->req_bytes;
    memoryRequirements->alignment = kGranularity;
    return CUDA_SUCCESS;
  });
}

XPU_FAKE_EXPORT CUresult cuMipmappedArrayGetMemoryRequirements(
    CUDA_ARRAY_MEMORY_REQUIREMENTS* memoryRequirements, CUmipmappedArray mipmap, CUdevice device) {
  XPU_FAKE_API(cuMipmappedArrayGetMemoryRequirements, {
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    if (memoryRequirements == nullptr) return CUDA_ERROR_INVALID_VALUE;
    if (CUresult r = check_device(device); r != CUDA_SUCCESS) return r;
    ProcLock lk;
    if (proc().mipmaps.count(mipmap) == 0) return CUDA_ERROR_INVALID_HANDLE;
    *memoryRequirements = CUDA_ARRAY_MEMORY_REQUIREMENTS{};
    memoryRequirements->size = mipmap->req_bytes;
    memoryRequirements->alignment = kGranularity;
    return CUDA_SUCCESS;
  });
}

}  // extern "C"
