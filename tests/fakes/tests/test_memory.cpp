// Memory of the simulated device: contexts, plain allocations up to OOM, pools, VMM, arrays.
// Tests compare deltas, so they also pass when all cases run in one process.
#include <cuda.h>

#include <thread>
#include <vector>

#include "fake_loader.hpp"
#include "xpu_catch.hpp"

using fk::kGiB;
using fk::kMiB;
using fk::query;

TEST_CASE("contexts charge their footprint to the device and the process") {
  REQUIRE(FK(cuInit)(0) == CUDA_SUCCESS);
  const auto used0 = query("used_bytes");
  const auto pid0 = query("pid_used_bytes");
  CUcontext primary = nullptr;
  REQUIRE(FK(cuDevicePrimaryCtxRetain)(&primary, 0) == CUDA_SUCCESS);
  CUcontext again = nullptr;
  REQUIRE(FK(cuDevicePrimaryCtxRetain)(&again, 0) == CUDA_SUCCESS);
  CHECK(again == primary);
  CHECK(query("used_bytes") == used0 + fk::kCtxBytes);  // once per primary context
  CHECK(query("pid_used_bytes") == pid0 + fk::kCtxBytes);
  unsigned flags = 0;
  int active = 0;
  REQUIRE(FK(cuDevicePrimaryCtxGetState)(0, &flags, &active) == CUDA_SUCCESS);
  CHECK(active == 1);

  CUcontext created = nullptr;
  REQUIRE(FK(cuCtxCreate_v4)(&created, nullptr, 0, 1) == CUDA_SUCCESS);  // on device 1
  CHECK(query("used_bytes", 1) >= fk::kCtxBytes);
  CUcontext cur = nullptr;
  REQUIRE(FK(cuCtxGetCurrent)(&cur) == CUDA_SUCCESS);
  CHECK(cur == created);  // a created context becomes current
  CUdevice dev = -1;
  REQUIRE(FK(cuCtxGetDevice)(&dev) == CUDA_SUCCESS);
  CHECK(dev == 1);
  CHECK(FK(cuCtxDestroy_v2)(primary) == CUDA_ERROR_INVALID_CONTEXT);  // not for primaries
  REQUIRE(FK(cuCtxDestroy_v2)(created) == CUDA_SUCCESS);
  REQUIRE(FK(cuCtxGetCurrent)(&cur) == CUDA_SUCCESS);
  CHECK(cur == nullptr);

  REQUIRE(FK(cuCtxPushCurrent_v2)(primary) == CUDA_SUCCESS);
  REQUIRE(FK(cuCtxPopCurrent_v2)(&cur) == CUDA_SUCCESS);
  CHECK(cur == primary);
  CHECK(FK(cuCtxPopCurrent_v2)(&cur) == CUDA_ERROR_INVALID_CONTEXT);

  REQUIRE(FK(cuDevicePrimaryCtxRelease_v2)(0) == CUDA_SUCCESS);
  CHECK(query("used_bytes") == used0 + fk::kCtxBytes);
  REQUIRE(FK(cuDevicePrimaryCtxRelease_v2)(0) == CUDA_SUCCESS);
  CHECK(query("used_bytes") == used0);
  CHECK(FK(cuDevicePrimaryCtxRelease_v2)(0) == CUDA_ERROR_INVALID_CONTEXT);
}

TEST_CASE("cuMemAlloc_v2 fails with CUDA_ERROR_OUT_OF_MEMORY exactly at the device total") {
  fk::PrimaryCtx ctx;
  size_t free0 = 0;
  size_t total = 0;
  REQUIRE(FK(cuMemGetInfo_v2)(&free0, &total) == CUDA_SUCCESS);
  CHECK(total == fk::kTotal);
  CHECK(free0 == total - query("used_bytes"));
  size_t tot2 = 0;
  REQUIRE(FK(cuDeviceTotalMem_v2)(&tot2, 0) == CUDA_SUCCESS);
  CHECK(tot2 == fk::kTotal);

  std::vector<CUdeviceptr> ptrs;
  CUdeviceptr p = 0;
  CUresult rc = CUDA_SUCCESS;
  while ((rc = FK(cuMemAlloc_v2)(&p, kGiB)) == CUDA_SUCCESS) ptrs.push_back(p);
  CHECK(rc == CUDA_ERROR_OUT_OF_MEMORY);
  CHECK(ptrs.size() == free0 / kGiB);
  size_t free1 = 0;
  REQUIRE(FK(cuMemGetInfo_v2)(&free1, &total) == CUDA_SUCCESS);
  CHECK(free1 == free0 - ptrs.size() * kGiB);
  CHECK(FK(cuMemAlloc_v2)(&p, free1) == CUDA_SUCCESS);  // the last byte still fits
  CHECK(FK(cuMemAlloc_v2)(&p, 1) == CUDA_ERROR_OUT_OF_MEMORY);
  REQUIRE(FK(cuMemFree_v2)(p) == CUDA_SUCCESS);
  for (CUdeviceptr q : ptrs) REQUIRE(FK(cuMemFree_v2)(q) == CUDA_SUCCESS);
  size_t free2 = 0;
  REQUIRE(FK(cuMemGetInfo_v2)(&free2, &total) == CUDA_SUCCESS);
  CHECK(free2 == free0);

  CHECK(FK(cuMemFree_v2)(0x1234) == CUDA_ERROR_INVALID_VALUE);  // unknown pointer
  CHECK(FK(cuMemAlloc_v2)(&p, 0) == CUDA_ERROR_INVALID_VALUE);
  CHECK(FK(cuMemGetInfo_v2)(nullptr, &total) == CUDA_ERROR_INVALID_VALUE);
  // Without a current context.
  std::thread([] {
    size_t f = 0;
    size_t t = 0;
    CUdeviceptr q = 0;
    CHECK(FK(cuMemGetInfo_v2)(&f, &t) == CUDA_ERROR_INVALID_CONTEXT);
    CHECK(FK(cuMemAlloc_v2)(&q, 1) == CUDA_ERROR_INVALID_CONTEXT);
  }).join();
}

TEST_CASE("old 32-bit ABIs and pitch and managed and host memory") {
  fk::PrimaryCtx ctx;
  const auto used0 = query("used_bytes");
  unsigned f32 = 0;
  unsigned t32 = 0;
  REQUIRE(FK(cuMemGetInfo)(&f32, &t32) == CUDA_SUCCESS);
  CHECK(t32 == 0xFFFFFFFFu);  // 16 GiB saturates
  CUdeviceptr_v1 p32 = 0;
  REQUIRE(FK(cuMemAlloc)(&p32, 1000) == CUDA_SUCCESS);
  CHECK(p32 != 0);
  CHECK(query("used_bytes") == used0 + 1000);
  REQUIRE(FK(cuMemFree)(p32) == CUDA_SUCCESS);

  CUdeviceptr p = 0;
  size_t pitch = 0;
  REQUIRE(FK(cuMemAllocPitch_v2)(&p, &pitch, 1000, 100, 4) == CUDA_SUCCESS);
  CHECK(pitch == 1024);
  CHECK(query("used_bytes") == used0 + 1024 * 100);
  CHECK(FK(cuMemAllocPitch_v2)(&p, &pitch, 1000, 100, 3) == CUDA_ERROR_INVALID_VALUE);
  REQUIRE(FK(cuMemFree_v2)(p) == CUDA_SUCCESS);

  REQUIRE(FK(cuMemAllocManaged)(&p, 64 * kMiB, CU_MEM_ATTACH_GLOBAL) == CUDA_SUCCESS);
  CHECK(query("used_bytes") == used0 + 64 * kMiB);
  REQUIRE(FK(cuMemFree_v2)(p) == CUDA_SUCCESS);

  void* h = nullptr;
  REQUIRE(FK(cuMemAllocHost_v2)(&h, 1 << 20) == CUDA_SUCCESS);
  static_cast<char*>(h)[12345] = 1;  // real host memory
  CHECK(query("used_bytes") == used0);
  REQUIRE(FK(cuMemFreeHost)(h) == CUDA_SUCCESS);
  CHECK(FK(cuMemFreeHost)(h) == CUDA_ERROR_INVALID_VALUE);
  CHECK(query("used_bytes") == used0);
}

TEST_CASE("stream-ordered allocations stay reserved in the pool until a synchronize") {
  fk::PrimaryCtx ctx;
  CUstream s = nullptr;
  REQUIRE(FK(cuStreamCreate)(&s, CU_STREAM_NON_BLOCKING) == CUDA_SUCCESS);
  CUmemoryPool pool = nullptr;
  REQUIRE(FK(cuDeviceGetDefaultMemPool)(&pool, 0) == CUDA_SUCCESS);
  CUmemoryPool cur = nullptr;
  REQUIRE(FK(cuDeviceGetMemPool)(&cur, 0) == CUDA_SUCCESS);
  CHECK(cur == pool);
  auto attr = [&](CUmemPool_attribute a) {
    cuuint64_t v = 0;
    REQUIRE(FK(cuMemPoolGetAttribute)(pool, a, &v) == CUDA_SUCCESS);
    return v;
  };
  const auto used0 = query("used_bytes");
  cuuint64_t reset = 0;
  REQUIRE(FK(cuMemPoolSetAttribute)(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH, &reset) ==
          CUDA_SUCCESS);
  REQUIRE(FK(cuMemPoolSetAttribute)(pool, CU_MEMPOOL_ATTR_USED_MEM_HIGH, &reset) == CUDA_SUCCESS);

  CUdeviceptr p = 0;
  REQUIRE(FK(cuMemAllocAsync)(&p, 10 * kMiB, s) == CUDA_SUCCESS);
  CHECK(attr(CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT) == 10 * kMiB);
  CHECK(attr(CU_MEMPOOL_ATTR_USED_MEM_CURRENT) == 10 * kMiB);
  CHECK(query("used_bytes") == used0 + 10 * kMiB);
  CUdeviceptr q = 0;
  REQUIRE(FK(cuMemAllocAsync_ptsz)(&q, 1 * kMiB, s) == CUDA_SUCCESS);
  CHECK(attr(CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT) == 12 * kMiB);  // grows in 2 MiB steps

  REQUIRE(FK(cuMemFreeAsync)(p, s) == CUDA_SUCCESS);
  REQUIRE(FK(cuMemFreeAsync_ptsz)(q, s) == CUDA_SUCCESS);
  CHECK(attr(CU_MEMPOOL_ATTR_USED_MEM_CURRENT) == 0);
  CHECK(attr(CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT) == 12 * kMiB);  // still held by the pool
  CHECK(query("used_bytes") == used0 + 12 * kMiB);
  REQUIRE(FK(cuStreamSynchronize)(s) == CUDA_SUCCESS);  // threshold 0: trimmed
  CHECK(attr(CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT) == 0);
  CHECK(attr(CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH) == 12 * kMiB);
  CHECK(attr(CU_MEMPOOL_ATTR_USED_MEM_HIGH) == 11 * kMiB);
  CHECK(query("used_bytes") == used0);

  // A release threshold keeps memory across synchronizes; cuMemPoolTrimTo releases it.
  cuuint64_t threshold = 1 * kGiB;
  REQUIRE(FK(cuMemPoolSetAttribute)(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &threshold) ==
          CUDA_SUCCESS);
  REQUIRE(FK(cuMemAllocAsync)(&p, 64 * kMiB, s) == CUDA_SUCCESS);
  REQUIRE(FK(cuMemFreeAsync)(p, s) == CUDA_SUCCESS);
  REQUIRE(FK(cuCtxSynchronize)() == CUDA_SUCCESS);
  CHECK(attr(CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT) == 64 * kMiB);
  REQUIRE(FK(cuMemAllocAsync)(&p, 32 * kMiB, s) == CUDA_SUCCESS);  // reuses the reservation
  CHECK(attr(CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT) == 64 * kMiB);
  REQUIRE(FK(cuMemPoolTrimTo)(pool, 0) == CUDA_SUCCESS);
  CHECK(attr(CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT) == 32 * kMiB);  // in-use memory stays
  REQUIRE(FK(cuMemFreeAsync)(p, s) == CUDA_SUCCESS);
  REQUIRE(FK(cuMemPoolTrimTo)(pool, 0) == CUDA_SUCCESS);
  CHECK(attr(CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT) == 0);
  threshold = 0;
  REQUIRE(FK(cuMemPoolSetAttribute)(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &threshold) ==
          CUDA_SUCCESS);
  cuuint64_t zero = 0;
  REQUIRE(FK(cuMemPoolSetAttribute)(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH, &zero) ==
          CUDA_SUCCESS);
  CHECK(attr(CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH) == 0);

  // Explicit pools: device pools count (and honour maxSize), host pools do not.
  CUmemPoolProps props{};
  props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
  props.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  props.location.id = 0;
  props.maxSize = 8 * kMiB;
  CUmemoryPool mine = nullptr;
  REQUIRE(FK(cuMemPoolCreate)(&mine, &props) == CUDA_SUCCESS);
  REQUIRE(FK(cuMemAllocFromPoolAsync)(&p, 6 * kMiB, mine, s) == CUDA_SUCCESS);
  CHECK(FK(cuMemAllocFromPoolAsync)(&q, 4 * kMiB, mine, s) == CUDA_ERROR_OUT_OF_MEMORY);
  CHECK(query("used_bytes") == used0 + 6 * kMiB);
  REQUIRE(FK(cuDeviceSetMemPool)(0, mine) == CUDA_SUCCESS);
  REQUIRE(FK(cuMemFreeAsync)(p, s) == CUDA_SUCCESS);
  REQUIRE(FK(cuMemPoolDestroy)(mine) == CUDA_SUCCESS);
  CHECK(query("used_bytes") == used0);
  REQUIRE(FK(cuDeviceGetMemPool)(&cur, 0) == CUDA_SUCCESS);
  CHECK(cur == pool);  // back to the default pool

  props.location.type = CU_MEM_LOCATION_TYPE_HOST;
  props.maxSize = 0;
  REQUIRE(FK(cuMemPoolCreate)(&mine, &props) == CUDA_SUCCESS);
  REQUIRE(FK(cuMemAllocFromPoolAsync)(&p, 64 * kMiB, mine, s) == CUDA_SUCCESS);
  CHECK(query("used_bytes") == used0);
  REQUIRE(FK(cuMemFreeAsync)(p, s) == CUDA_SUCCESS);
  REQUIRE(FK(cuMemPoolDestroy)(mine) == CUDA_SUCCESS);

  // Pool reservations count against the device total.
  size_t free_b = 0;
  size_t total = 0;
  REQUIRE(FK(cuMemGetInfo_v2)(&free_b, &total) == CUDA_SUCCESS);
  CHECK(FK(cuMemAllocAsync)(&p, free_b + 1, s) == CUDA_ERROR_OUT_OF_MEMORY);
  REQUIRE(FK(cuStreamDestroy_v2)(s) == CUDA_SUCCESS);
}

TEST_CASE("VMM handles count on the device and mapped memory outlives cuMemRelease") {
  fk::PrimaryCtx ctx;
  const auto used0 = query("used_bytes");
  CUmemAllocationProp prop{};
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  prop.location.id = 0;
  size_t gran = 0;
  REQUIRE(FK(cuMemGetAllocationGranularity)(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED) ==
          CUDA_SUCCESS);
  CHECK(gran == 2 * kMiB);

  CUmemGenericAllocationHandle h = 0;
  CHECK(FK(cuMemCreate)(&h, 3 * kMiB, &prop, 0) == CUDA_ERROR_INVALID_VALUE);
  REQUIRE(FK(cuMemCreate)(&h, 8 * kMiB, &prop, 0) == CUDA_SUCCESS);
  CHECK(query("used_bytes") == used0 + 8 * kMiB);

  CUmemAllocationProp host = prop;
  host.location.type = CU_MEM_LOCATION_TYPE_HOST_NUMA;
  CUmemGenericAllocationHandle hh = 0;
  REQUIRE(FK(cuMemCreate)(&hh, 64 * kMiB, &host, 0) == CUDA_SUCCESS);
  CHECK(query("used_bytes") == used0 + 8 * kMiB);  // host memory is not device memory
  REQUIRE(FK(cuMemRelease)(hh) == CUDA_SUCCESS);

  CUdeviceptr va = 0;
  REQUIRE(FK(cuMemAddressReserve)(&va, 16 * kMiB, 0, 0, 0) == CUDA_SUCCESS);
  CHECK(va % (2 * kMiB) == 0);
  REQUIRE(FK(cuMemMap)(va, 8 * kMiB, 0, h, 0) == CUDA_SUCCESS);
  CHECK(FK(cuMemMap)(va + 4 * kMiB, 4 * kMiB, 0, h, 0) == CUDA_ERROR_INVALID_VALUE);  // overlap
  CUmemAccessDesc acc{};
  acc.location = prop.location;
  acc.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
  REQUIRE(FK(cuMemSetAccess)(va, 8 * kMiB, &acc, 1) == CUDA_SUCCESS);
  CUmemGenericAllocationHandle back = 0;
  REQUIRE(FK(cuMemRetainAllocationHandle)(&back, reinterpret_cast<void*>(va + kMiB)) ==
          CUDA_SUCCESS);
  CHECK(back == h);
  REQUIRE(FK(cuMemRelease)(back) == CUDA_SUCCESS);
  REQUIRE(FK(cuMemRelease)(h) == CUDA_SUCCESS);
  CHECK(FK(cuMemRelease)(h) == CUDA_ERROR_INVALID_VALUE);
  CHECK(query("used_bytes") == used0 + 8 * kMiB);  // still mapped
  REQUIRE(FK(cuMemUnmap)(va, 8 * kMiB) == CUDA_SUCCESS);
  CHECK(query("used_bytes") == used0);
  REQUIRE(FK(cuMemAddressFree)(va, 16 * kMiB) == CUDA_SUCCESS);

  // Running out: cuMemCreate fails with exactly CUDA_ERROR_OUT_OF_MEMORY.
  size_t free_b = 0;
  size_t total = 0;
  REQUIRE(FK(cuMemGetInfo_v2)(&free_b, &total) == CUDA_SUCCESS);
  CHECK(FK(cuMemCreate)(&h, (free_b / (2 * kMiB) + 1) * 2 * kMiB, &prop, 0) ==
        CUDA_ERROR_OUT_OF_MEMORY);
}

TEST_CASE("arrays charge their memory requirements (rounded to 2 MiB)") {
  fk::PrimaryCtx ctx;
  const auto used0 = query("used_bytes");
  CUDA_ARRAY_DESCRIPTOR d{};
  d.Width = 1000;
  d.Height = 1000;
  d.Format = CU_AD_FORMAT_FLOAT;
  d.NumChannels = 4;
  CUarray a = nullptr;
  REQUIRE(FK(cuArrayCreate_v2)(&a, &d) == CUDA_SUCCESS);
  CUDA_ARRAY_MEMORY_REQUIREMENTS req{};
  REQUIRE(FK(cuArrayGetMemoryRequirements)(&req, a, 0) == CUDA_SUCCESS);
  CHECK(req.size == 16777216);  // 16 000 000 B rounded up to 8 x 2 MiB
  CHECK(req.alignment == 2 * kMiB);
  CHECK(query("used_bytes") == used0 + req.size);

  CUDA_ARRAY3D_DESCRIPTOR d3{};
  d3.Width = 64;
  d3.Height = 64;
  d3.Depth = 64;
  d3.Format = CU_AD_FORMAT_UNSIGNED_INT8;
  d3.NumChannels = 1;
  CUarray a3 = nullptr;
  REQUIRE(FK(cuArray3DCreate_v2)(&a3, &d3) == CUDA_SUCCESS);
  CHECK(query("used_bytes") == used0 + req.size + 2 * kMiB);

  CUDA_ARRAY3D_DESCRIPTOR dm{};
  dm.Width = 1024;
  dm.Height = 1024;
  dm.Format = CU_AD_FORMAT_UNSIGNED_INT8;
  dm.NumChannels = 4;
  CUmipmappedArray m = nullptr;
  REQUIRE(FK(cuMipmappedArrayCreate)(&m, &dm, 11) == CUDA_SUCCESS);
  CUDA_ARRAY_MEMORY_REQUIREMENTS mreq{};
  REQUIRE(FK(cuMipmappedArrayGetMemoryRequirements)(&mreq, m, 0) == CUDA_SUCCESS);
  CHECK(mreq.size == 6 * kMiB);  // 4 x (1024^2 + 512^2 + ... + 1) = 5 592 404 B
  CHECK(query("used_bytes") == used0 + req.size + 2 * kMiB + 6 * kMiB);

  dm.Flags = CUDA_ARRAY3D_DEFERRED_MAPPING;  // no backing until mapped
  CUmipmappedArray deferred = nullptr;
  REQUIRE(FK(cuMipmappedArrayCreate)(&deferred, &dm, 1) == CUDA_SUCCESS);
  CHECK(query("used_bytes") == used0 + req.size + 2 * kMiB + 6 * kMiB);

  REQUIRE(FK(cuArrayDestroy)(a) == CUDA_SUCCESS);
  REQUIRE(FK(cuArrayDestroy)(a3) == CUDA_SUCCESS);
  REQUIRE(FK(cuMipmappedArrayDestroy)(m) == CUDA_SUCCESS);
  REQUIRE(FK(cuMipmappedArrayDestroy)(deferred) == CUDA_SUCCESS);
  CHECK(FK(cuArrayDestroy)(a) == CUDA_ERROR_INVALID_HANDLE);
  CHECK(query("used_bytes") == used0);
}

TEST_CASE("destroying a context frees what it owned") {
  REQUIRE(FK(cuInit)(0) == CUDA_SUCCESS);
  const auto used0 = query("used_bytes");
  CUcontext c = nullptr;
  REQUIRE(FK(cuCtxCreate_v2)(&c, 0, 0) == CUDA_SUCCESS);
  CUdeviceptr p = 0;
  REQUIRE(FK(cuMemAlloc_v2)(&p, 100 * kMiB) == CUDA_SUCCESS);
  CHECK(query("used_bytes") == used0 + fk::kCtxBytes + 100 * kMiB);
  REQUIRE(FK(cuCtxDestroy_v2)(c) == CUDA_SUCCESS);
  CHECK(query("used_bytes") == used0);
}

TEST_CASE("device queries") {
  REQUIRE(FK(cuInit)(0) == CUDA_SUCCESS);
  int n = 0;
  REQUIRE(FK(cuDeviceGetCount)(&n) == CUDA_SUCCESS);
  CHECK(n == 2);
  CUdevice d = -1;
  REQUIRE(FK(cuDeviceGet)(&d, 1) == CUDA_SUCCESS);
  CHECK(d == 1);
  CHECK(FK(cuDeviceGet)(&d, 2) == CUDA_ERROR_INVALID_DEVICE);
  int sm = 0;
  REQUIRE(FK(cuDeviceGetAttribute)(&sm, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 0) ==
          CUDA_SUCCESS);
  CHECK(sm == 132);
  int major = 0;
  REQUIRE(FK(cuDeviceGetAttribute)(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, 0) ==
          CUDA_SUCCESS);
  CHECK(major == 9);
  CUuuid u{};
  REQUIRE(FK(cuDeviceGetUuid_v2)(&u, 1) == CUDA_SUCCESS);
  CHECK(static_cast<unsigned char>(u.bytes[0]) == 0xfa);
  CHECK(static_cast<unsigned char>(u.bytes[1]) == 0xce);
  CHECK(static_cast<unsigned char>(u.bytes[15]) == 1);
  char name[64] = {};
  REQUIRE(FK(cuDeviceGetName)(name, sizeof name, 0) == CUDA_SUCCESS);
  CHECK(std::string(name).find("H100") != std::string::npos);
  unsigned t32 = 0;
  REQUIRE(FK(cuDeviceTotalMem)(&t32, 0) == CUDA_SUCCESS);
  CHECK(t32 == 0xFFFFFFFFu);
}
