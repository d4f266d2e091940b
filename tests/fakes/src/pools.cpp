// Stream-ordered allocation and memory pools, with the real pool semantics that matter for
// accounting: a pool's reserved bytes grow (in 2 MiB steps) when an allocation does not fit in
// what it already holds; cuMemFreeAsync returns bytes to the pool, not to the device; a
// synchronize (stream, event or context) trims each pool down to its release threshold (default
// 0), as does cuMemPoolTrimTo. Reserved bytes of device pools count as device memory in use.
// On a capturing stream, cuMemAllocAsync/cuMemFreeAsync only add graph nodes (no memory).
#include <algorithm>

#include "exports.hpp"
#include "process.hpp"

namespace xpu_fake {

CUmemPoolHandle_st* default_pool_locked(int dev) {
  Process& p = proc();
  if (p.default_pool[dev] == nullptr) {
    auto* pool = new CUmemPoolHandle_st{dev, true, true, 0, 0, 0, 0, 0, 0};
    p.default_pool[dev] = pool;
    p.pools.insert(pool);
  }
  if (p.current_pool[dev] == nullptr) p.current_pool[dev] = p.default_pool[dev];
  return p.default_pool[dev];
}

void trim_pool_locked(CUmemPoolHandle_st* p, uint64_t keep) {
  // Memory backing live allocations cannot be released; reservations are whole 2 MiB chunks.
  const uint64_t floor = std::max(p->used, keep);
  if (floor >= p->reserved) return;
  const uint64_t target = std::min(round_up(floor, kGranularity), p->reserved);
  const uint64_t release = p->reserved - target;
  p->reserved = target;
  if (p->device_memory && release != 0) uncharge(p->device, release);
}

CUresult pool_alloc_locked(CUmemPoolHandle_st* p, uint64_t size, CUdeviceptr* out) {
  const uint64_t avail = p->reserved - p->used;
  if (size > avail) {
    const uint64_t grow = round_up(size - avail, kGranularity);
    if (p->max_size != 0 && p->reserved + grow > p->max_size) return CUDA_ERROR_OUT_OF_MEMORY;
    if (p->device_memory && !charge(p->device, grow)) return CUDA_ERROR_OUT_OF_MEMORY;
    p->reserved += grow;
    p->reserved_high = std::max(p->reserved_high, p->reserved);
  }
  p->used += size;
  p->used_high = std::max(p->used_high, p->used);
  const CUdeviceptr addr = new_device_address_locked(size);
  proc().allocs[addr] = Alloc{size, 0, p->device, nullptr, AllocKind::kPool, p};
  *out = addr;
  return CUDA_SUCCESS;
}

CUresult free_async_locked(CUdeviceptr ptr) {
  Process& p = proc();
  auto it = p.allocs.find(ptr);
  if (it == p.allocs.end()) return CUDA_ERROR_INVALID_VALUE;
  Alloc a = it->second;
  p.allocs.erase(it);
  switch (a.kind) {
    case AllocKind::kPool:
      a.pool->used -= std::min(a.pool->used, a.size);  // stays reserved until a trim
      break;
    case AllocKind::kPlain:
    case AllocKind::kManaged:
      uncharge(a.device, a.charged);
      break;
    case AllocKind::kGraph:
      break;
  }
  return CUDA_SUCCESS;
}

namespace {

CUresult alloc_async(CUdeviceptr* dptr, size_t size, CUmemoryPool pool, CUstream h, bool ptsz) {
  if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
  if (dptr == nullptr || size == 0) return CUDA_ERROR_INVALID_VALUE;
  ProcLock lk;
  CUstream_st* s = nullptr;
  if (CUresult r = resolve_stream_locked(h, ptsz, &s); r != CUDA_SUCCESS) return r;
  if (pool != nullptr && proc().pools.count(pool) == 0) return CUDA_ERROR_INVALID_VALUE;
  if (capturing(s)) {
    Capture* c = s->capture;
    if (c->status != CU_STREAM_CAPTURE_STATUS_ACTIVE) return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    // Becomes an allocation node; memory materialises per graph at upload/launch.
    const CUdeviceptr addr = new_device_address_locked(size);
    c->graph->nodes.push_back(
        std::make_unique<CUgraphNode_st>(CUgraphNode_st{NodeKind::kMemAlloc, 0, size, addr}));
    c->graph->alloc_bytes += size;
    proc().allocs[addr] = Alloc{size, 0, s->device, nullptr, AllocKind::kGraph, nullptr};
    *dptr = addr;
    return CUDA_SUCCESS;
  }
  if (CUresult r = legacy_stream_check_locked(s); r != CUDA_SUCCESS) return r;
  if (pool == nullptr) {
    default_pool_locked(s->device);
    pool = proc().current_pool[s->device];
  }
  return pool_alloc_locked(pool, size, dptr);
}

CUresult free_async(CUdeviceptr ptr, CUstream h, bool ptsz) {
  if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
  ProcLock lk;
  CUstream_st* s = nullptr;
  if (CUresult r = resolve_stream_locked(h, ptsz, &s); r != CUDA_SUCCESS) return r;
  if (capturing(s)) {
    Capture* c = s->capture;
    if (c->status != CU_STREAM_CAPTURE_STATUS_ACTIVE) return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    c->graph->nodes.push_back(
        std::make_unique<CUgraphNode_st>(CUgraphNode_st{NodeKind::kMemFree, 0, 0, ptr}));
    return CUDA_SUCCESS;
  }
  if (CUresult r = legacy_stream_check_locked(s); r != CUDA_SUCCESS) return r;
  return free_async_locked(ptr);
}

CUresult valid_pool_locked(CUmemoryPool pool) {
  return pool != nullptr && proc().pools.count(pool) != 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

// Only device locations of pinned memory have pools here (13.0's location-based pool API).
CUresult device_of_location(const CUmemLocation* loc, CUmemAllocationType type, int* dev) {
  if (loc == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (loc->type != CU_MEM_LOCATION_TYPE_DEVICE || type != CU_MEM_ALLOCATION_TYPE_PINNED) {
    return CUDA_ERROR_NOT_SUPPORTED;
  }
  if (CUresult r = check_device(loc->id); r != CUDA_SUCCESS) return r;
  *dev = loc->id;
  return CUDA_SUCCESS;
}

}  // namespace
}  // namespace xpu_fake

using namespace xpu_fake;

extern "C" {

XPU_FAKE_EXPORT CUresult cuMemAllocAsync(CUdeviceptr* dptr, size_t bytesize, CUstream hStream) {
  XPU_FAKE_API(cuMemAllocAsync, return alloc_async(dptr, bytesize, nullptr, hStream, false););
}
XPU_FAKE_EXPORT CUresult cuMemAllocAsync_ptsz(CUdeviceptr* dptr, size_t bytesize,
                                              CUstream hStream) {
  XPU_FAKE_API(cuMemAllocAsync_ptsz, return alloc_async(dptr, bytesize, nullptr, hStream, true););
}
XPU_FAKE_EXPORT CUresult cuMemAllocFromPoolAsync(CUdeviceptr* dptr, size_t bytesize,
                                                 CUmemoryPool pool, CUstream hStream) {
  XPU_FAKE_API(cuMemAllocFromPoolAsync, {
    if (pool == nullptr) return CUDA_ERROR_INVALID_VALUE;
    return alloc_async(dptr, bytesize, pool, hStream, false);
  });
}
XPU_FAKE_EXPORT CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr* dptr, size_t bytesize,
                                                      CUmemoryPool pool, CUstream hStream) {
  XPU_FAKE_API(cuMemAllocFromPoolAsync_ptsz, {
    if (pool == nullptr) return CUDA_ERROR_INVALID_VALUE;
    return alloc_async(dptr, bytesize, pool, hStream, true);
  });
}
XPU_FAKE_EXPORT CUresult cuMemFreeAsync(CUdeviceptr dptr, CUstream hStream) {
  XPU_FAKE_API(cuMemFreeAsync, return free_async(dptr, hStream, false););
}
XPU_FAKE_EXPORT CUresult cuMemFreeAsync_ptsz(CUdeviceptr dptr, CUstream hStream) {
  XPU_FAKE_API(cuMemFreeAsync_ptsz, return free_async(dptr, hStream, true););
}

XPU_FAKE_EXPORT CUresult cuMemPoolCreate(CUmemoryPool* pool, const CUmemPoolProps* poolProps) {
  XPU_FAKE_API(cuMemPoolCreate, {
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    if (pool == nullptr || poolProps == nullptr) return CUDA_ERROR_INVALID_VALUE;
    if (poolProps->allocType != CU_MEM_ALLOCATION_TYPE_PINNED) return CUDA_ERROR_INVALID_VALUE;
    const CUmemLocation& loc = poolProps->location;
    bool device_memory = false;
    int dev = 0;
    switch (loc.type) {
      case CU_MEM_LOCATION_TYPE_DEVICE:
        if (CUresult r = check_device(loc.id); r != CUDA_SUCCESS) return CUDA_ERROR_INVALID_VALUE;
        device_memory = true;
        dev = loc.id;
        break;
      case CU_MEM_LOCATION_TYPE_HOST:
      case CU_MEM_LOCATION_TYPE_HOST_NUMA:
      case CU_MEM_LOCATION_TYPE_HOST_NUMA_CURRENT:
        break;  // host memory: never counts against the device
      default:
        return CUDA_ERROR_INVALID_VALUE;
    }
    ProcLock lk;
    auto* p = new CUmemPoolHandle_st{dev, device_memory, false, poolProps->maxSize, 0, 0, 0, 0, 0};
    proc().pools.insert(p);
    *pool = p;
    return CUDA_SUCCESS;
  });
}

XPU_FAKE_EXPORT CUresult cuMemPoolDestroy(CUmemoryPool pool) {
  XPU_FAKE_API(cuMemPoolDestroy, {
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    ProcLock lk;
    if (CUresult r = valid_pool_locked(pool); r != CUDA_SUCCESS) return r;
    if (pool->is_default) return CUDA_ERROR_INVALID_VALUE;
    Process& p = proc();
    // Outstanding allocations die with the pool; all of its reservation goes back.
    for (auto it = p.allocs.begin(); it != p.allocs.end();) {
      it = it->second.pool == pool ? p.allocs.erase(it) : std::next(it);
    }
    if (pool->device_memory) uncharge(pool->device, pool->reserved);
    for (auto& cur : p.current_pool) {
      if (cur == pool) cur = p.default_pool[pool->device];
    }
    p.pools.erase(pool);
    delete pool;
    return CUDA_SUCCESS;
  });
}

XPU_FAKE_EXPORT CUresult cuMemPoolTrimTo(CUmemoryPool pool, size_t minBytesToKeep) {
  XPU_FAKE_API(cuMemPoolTrimTo, {
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    ProcLock lk;
    if (CUresult r = valid_pool_locked(pool); r != CUDA_SUCCESS) return r;
    trim_pool_locked(pool, minBytesToKeep);
    return CUDA_SUCCESS;
  });
}

XPU_FAKE_EXPORT CUresult cuMemPoolGetAttribute(CUmemoryPool pool, CUmemPool_attribute attr,
                                               void* value) {
  XPU_FAKE_API(cuMemPoolGetAttribute, {
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    if (value == nullptr) return CUDA_ERROR_INVALID_VALUE;
    ProcLock lk;
    if (CUresult r = valid_pool_locked(pool); r != CUDA_SUCCESS) return r;
    auto* v64 = static_cast<cuuint64_t*>(value);
    switch (attr) {
      case CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES:
      case CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC:
      case CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES:
        *static_cast<int*>(value) = 1;  // the driver's defaults
        return CUDA_SUCCESS;
      case CU_MEMPOOL_ATTR_RELEASE_THRESHOLD:
        *v64 = pool->threshold;
        return CUDA_SUCCESS;
      case CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT:
        *v64 = pool->reserved;
        return CUDA_SUCCESS;
      case CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH:
        *v64 = pool->reserved_high;
        return CUDA_SUCCESS;
      case CU_MEMPOOL_ATTR_USED_MEM_CURRENT:
        *v64 = pool->used;
        return CUDA_SUCCESS;
      case CU_MEMPOOL_ATTR_USED_MEM_HIGH:
        *v64 = pool->used_high;
        return CUDA_SUCCESS;
      default:
        return CUDA_ERROR_INVALID_VALUE;
    }
  });
}

XPU_FAKE_EXPORT CUresult cuMemPoolSetAttribute(CUmemoryPool pool, CUmemPool_attribute attr,
                                               void* value) {
  XPU_FAKE_API(cuMemPoolSetAttribute, {
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    if (value == nullptr) return CUDA_ERROR_INVALID_VALUE;
    ProcLock lk;
    if (CUresult r = valid_pool_locked(pool); r != CUDA_SUCCESS) return r;
    const cuuint64_t v64 = *static_cast<const cuuint64_t*>(value);
    switch (attr) {
      case CU_MEMPOOL_ATTR_REUSE_FOLLOW_EVENT_DEPENDENCIES:
      case CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC:
      case CU_MEMPOOL_ATTR_REUSE_ALLOW_INTERNAL_DEPENDENCIES:
        return CUDA_SUCCESS;  // accepted, no effect on the simulation
      case CU_MEMPOOL_ATTR_RELEASE_THRESHOLD:
        pool->threshold = v64;
        return CUDA_SUCCESS;
      case CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH:  // only resettable, to the current value
        if (v64 != 0) return CUDA_ERROR_INVALID_VALUE;
        pool->reserved_high = pool->reserved;
        return CUDA_SUCCESS;
      case CU_MEMPOOL_ATTR_USED_MEM_HIGH:
        if (v64 != 0) return CUDA_ERROR_INVALID_VALUE;
        pool->used_high = pool->used;
        return CUDA_SUCCESS;
      default:
        return CUDA_ERROR_INVALID_VALUE;
    }
  });
}

XPU_FAKE_EXPORT CUresult cuDeviceGetDefaultMemPool(CUmemoryPool* pool_out, CUdevice dev) {
  XPU_FAKE_API(cuDeviceGetDefaultMemPool, {
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    if (pool_out == nullptr) return CUDA_ERROR_INVALID_VALUE;
    if (CUresult r = check_device(dev); r != CUDA_SUCCESS) return r;
    ProcLock lk;
    *pool_out = default_pool_locked(dev);
    return CUDA_SUCCESS;
  });
}

XPU_FAKE_EXPORT CUresult cuDeviceGetMemPool(CUmemoryPool* pool, CUdevice dev) {
  XPU_FAKE_API(cuDeviceGetMemPool, {
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    if (pool == nullptr) return CUDA_ERROR_INVALID_VALUE;
    if (CUresult r = check_device(dev); r != CUDA_SUCCESS) return r;
    ProcLock lk;
    default_pool_locked(dev);
    *pool = proc().current_pool[dev];
    return CUDA_SUCCESS;
  });
}

XPU_FAKE_EXPORT CUresult cuDeviceSetMemPool(CUdevice dev, CUmemoryPool pool) {
  XPU_FAKE_API(cuDeviceSetMemPool, {
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    if (CUresult r = check_device(dev); r != CUDA_SUCCESS) return r;
    ProcLock lk;
    if (CUresult r = valid_pool_locked(pool); r != CUDA_SUCCESS) return r;
    if (!pool->device_memory || pool->device != dev) return CUDA_ERROR_INVALID_VALUE;
    default_pool_locked(dev);
    proc().current_pool[dev] = pool;
    return CUDA_SUCCESS;
  });
}

XPU_FAKE_EXPORT CUresult cuMemGetDefaultMemPool(CUmemoryPool* pool_out, CUmemLocation* location,
                                                CUmemAllocationType type) {
  XPU_FAKE_API(cuMemGetDefaultMemPool, {
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    if (pool_out == nullptr) return CUDA_ERROR_INVALID_VALUE;
    int dev = 0;
    if (CUresult r = device_of_location(location, type, &dev); r != CUDA_SUCCESS) return r;
    ProcLock lk;
    *pool_out = default_pool_locked(dev);
    return CUDA_SUCCESS;
  });
}

XPU_FAKE_EXPORT CUresult cuMemGetMemPool(CUmemoryPool* pool, CUmemLocation* location,
                                         CUmemAllocationType type) {
  XPU_FAKE_API(cuMemGetMemPool, {
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    if (pool == nullptr) return CUDA_ERROR_INVALID_VALUE;
    int dev = 0;
    if (CUresult r = device_of_location(location, type, &dev); r != CUDA_SUCCESS) return r;
    ProcLock lk;
    default_pool_locked(dev);
    *pool = proc().current_pool[dev];
    return CUDA_SUCCESS;
  });
}

XPU_FAKE_EXPORT CUresult cuMemSetMemPool(CUmemLocation* location, CUmemAllocationType type,
                                         CUmemoryPool pool) {
  XPU_FAKE_API(cuMemSetMemPool, {
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    int dev = 0;
    if (CUresult r = device_of_location(location, type, &dev); r != CUDA_SUCCESS) return r;
    ProcLock lk;
    if (CUresult r = valid_pool_locked(pool); r != CUDA_SUCCESS) return r;
    if (!pool->device_memory || pool->device != dev) return CUDA_ERROR_INVALID_VALUE;
    default_pool_locked(dev);
    proc().current_pool[dev] = pool;
    return CUDA_SUCCESS;
  });
}

}  // extern "C"
