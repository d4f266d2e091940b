// driver_paths: every way a program reaches the driver's memory functions, on the real driver.
//
// A preload library only sees a call if it intercepts the *path* the caller took (see
// shared research §1.3-1.4): plain symbol interposition catches programs linked with -lcuda, but a
// dlsym on a libcuda handle, or a pointer returned by cuGetProcAddress, bypasses the dynamic
// linker. This program takes each path in turn and checks the same things through it:
//   direct     functions linked with -lcuda (PLT)                   e.g. our own tools, old apps
//   dlsym      dlopen("libcuda.so.1") + dlsym("cuMemAlloc_v2", ...)  cuBLAS, XLA, CuPy ctypes
//   gpa        the linked cuGetProcAddress_v2 with base names      PyTorch DriverAPI, NCCL
//   gpa_dlsym  dlsym("cuGetProcAddress_v2") then GPA               every copy of cudart
//   gpa_v1     dlsym("cuGetProcAddress"), the 4-argument 11.3 ABI  cudart 11.x/12.x builds
// Per path, with Q = --quota: cuMemGetInfo total == Q, cuDeviceTotalMem == Q, cuMemAlloc_v2(Q +
// chunk) == CUDA_ERROR_OUT_OF_MEMORY, chunks until OOM sum to <= Q, frees are credited back.
// The direct path also checks the VMM entry (cuMemCreate), used by PyTorch expandable segments
// and JAX.
//
// Usage: driver_paths --quota 2GiB [--chunk 256MiB] [--hold-ms 300]
//        driver_paths --expect-init-failure        (bad configuration: cuInit must fail)
//        driver_paths --quota none [--max-fill 2GiB]   (baseline without the shim)
#include <cuda.h>
#include <cudaTypedefs.h>
#include <dlfcn.h>

#include <algorithm>
#include <vector>

#include "gpu_check.hpp"

namespace {

using xpu::gputest::Args;
using xpu::gputest::ge;
using xpu::gputest::le;
using xpu::gputest::num;
using xpu::gputest::Report;

struct MemApi {
  std::string name;
  PFN_cuMemGetInfo_v3020 mem_get_info = nullptr;
  PFN_cuDeviceTotalMem_v3020 device_total_mem = nullptr;
  PFN_cuMemAlloc_v3020 alloc = nullptr;
  PFN_cuMemFree_v3020 free = nullptr;
  bool complete() const { return mem_get_info && device_total_mem && alloc && free; }
};

std::string rc_name(CUresult rc) {
  const char* name = nullptr;
  if (cuGetErrorName(rc, &name) != CUDA_SUCCESS || name == nullptr) name = "?";
  return std::string(name) + "(" + std::to_string(static_cast<int>(rc)) + ")";
}

// dlsym returns an object pointer; POSIX guarantees it converts to a function pointer.
template <typename Fn>
Fn sym(void* handle, const char* name) {
  return reinterpret_cast<Fn>(dlsym(handle, name));
}

MemApi direct_api() {
  return {"direct", &cuMemGetInfo_v2, &cuDeviceTotalMem_v2, &cuMemAlloc_v2, &cuMemFree_v2};
}

MemApi dlsym_api(void* libcuda) {
  return {"dlsym", sym<PFN_cuMemGetInfo_v3020>(libcuda, "cuMemGetInfo_v2"),
          sym<PFN_cuDeviceTotalMem_v3020>(libcuda, "cuDeviceTotalMem_v2"),
          sym<PFN_cuMemAlloc_v3020>(libcuda, "cuMemAlloc_v2"),
          sym<PFN_cuMemFree_v3020>(libcuda, "cuMemFree_v2")};
}

// Asks a cuGetProcAddress for base names, as cudart and PyTorch do (flags 0 = legacy stream).
template <typename Lookup>
MemApi gpa_api(const std::string& name, Lookup lookup) {
  MemApi api;
  api.name = name;
  api.mem_get_info = reinterpret_cast<PFN_cuMemGetInfo_v3020>(lookup("cuMemGetInfo"));
  api.device_total_mem = reinterpret_cast<PFN_cuDeviceTotalMem_v3020>(lookup("cuDeviceTotalMem"));
  api.alloc = reinterpret_cast<PFN_cuMemAlloc_v3020>(lookup("cuMemAlloc"));
  api.free = reinterpret_cast<PFN_cuMemFree_v3020>(lookup("cuMemFree"));
  return api;
}

struct Setup {
  std::optional<std::uint64_t> quota;
  std::uint64_t chunk;
  std::uint64_t max_fill;
  int hold_ms;
  CUdevice dev;
};

// The checks of one path. Returns with everything it allocated freed again.
void check_path(Report& r, const MemApi& api, const Setup& s) {
  const std::string p = api.name + ".";
  r.check(p + "resolved", api.complete(), "4/4", api.complete() ? "4/4" : "missing");
  if (!api.complete()) return;
  const bool q = s.quota.has_value();
  const std::uint64_t Q = s.quota.value_or(0);

  std::size_t free0 = 0, total0 = 0, dev_total = 0;
  const CUresult mi = api.mem_get_info(&free0, &total0);
  r.check(p + "meminfo_call", mi == CUDA_SUCCESS, "CUDA_SUCCESS", rc_name(mi));
  r.check_if(q, p + "meminfo_total_eq_quota", total0 == Q, num(Q), num(total0));
  r.check_if(q, p + "meminfo_free_le_quota", free0 <= Q, le(Q), num(free0));
  (void)api.device_total_mem(&dev_total, s.dev);
  r.check_if(q, p + "device_total_mem_eq_quota", dev_total == Q, num(Q), num(dev_total));

  if (q) {
    CUdeviceptr big = 0;
    const CUresult rc = api.alloc(&big, Q + s.chunk);
    r.check(p + "over_quota_alloc", rc == CUDA_ERROR_OUT_OF_MEMORY,
            rc_name(CUDA_ERROR_OUT_OF_MEMORY), rc_name(rc));
    if (rc == CUDA_SUCCESS) (void)api.free(big);
  }

  // Fill; the cap a few chunks above Q only stops a broken shim from taking the whole card.
  std::vector<CUdeviceptr> chunks;
  CUresult stop = CUDA_SUCCESS;
  const std::uint64_t limit = q ? Q + 4 * s.chunk : s.max_fill;
  while (chunks.size() * s.chunk + s.chunk <= limit) {
    CUdeviceptr ptr = 0;
    stop = api.alloc(&ptr, s.chunk);
    if (stop != CUDA_SUCCESS) break;
    (void)cuMemsetD8_v2(ptr, 0x5A, s.chunk);  // commit the pages for the outside observer
    chunks.push_back(ptr);
  }
  (void)cuCtxSynchronize();
  const std::uint64_t filled = chunks.size() * s.chunk;
  std::size_t free_full = 0, total_full = 0;
  (void)api.mem_get_info(&free_full, &total_full);
  if (q) {
    r.check(p + "fill_stops_with_oom", stop == CUDA_ERROR_OUT_OF_MEMORY,
            rc_name(CUDA_ERROR_OUT_OF_MEMORY), rc_name(stop));
    r.check(p + "fill_bytes_le_quota", filled <= Q && filled > 0, le(Q), num(filled));
    r.check(p + "reported_used_le_quota", total_full - free_full <= Q, le(Q),
            num(total_full - free_full));
  } else {
    r.check(p + "fill_allocates", filled > 0, ">0", num(filled));
  }
  xpu::gputest::hold(s.hold_ms);

  for (CUdeviceptr ptr : chunks) (void)api.free(ptr);
  const std::size_t n = chunks.size();
  chunks.clear();
  std::size_t free1 = 0, total1 = 0;
  (void)api.mem_get_info(&free1, &total1);
  r.check(p + "free_recovers_after_free", free1 + s.chunk >= free0, ge(free0 - s.chunk),
          num(free1));

  // Allocate again: the shim must have credited every free.
  std::size_t again = 0;
  for (; again < n; ++again) {
    CUdeviceptr ptr = 0;
    if (api.alloc(&ptr, s.chunk) != CUDA_SUCCESS) break;
    chunks.push_back(ptr);
  }
  r.check(p + "realloc_after_free", again == n, num(n) + "chunks", num(again) + "chunks");
  for (CUdeviceptr ptr : chunks) (void)api.free(ptr);
}

// VMM: cuMemCreate makes physical memory without cuMemAlloc (PyTorch expandable segments, JAX).
void check_vmm(Report& r, const Setup& s) {
  CUmemAllocationProp prop{};
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  prop.location.id = s.dev;
  std::size_t gran = 0;
  if (cuMemGetAllocationGranularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM) !=
          CUDA_SUCCESS ||
      gran == 0) {
    r.check("vmm.granularity", false, ">0", "error");
    return;
  }
  const auto round_up = [gran](std::uint64_t v) { return (v + gran - 1) / gran * gran; };
  CUmemGenericAllocationHandle h{};
  if (s.quota) {
    const CUresult rc = cuMemCreate(&h, round_up(*s.quota + s.chunk), &prop, 0);
    r.check("vmm.over_quota_cuMemCreate", rc == CUDA_ERROR_OUT_OF_MEMORY,
            rc_name(CUDA_ERROR_OUT_OF_MEMORY), rc_name(rc));
    if (rc == CUDA_SUCCESS) (void)cuMemRelease(h);
  }
  const CUresult ok = cuMemCreate(&h, round_up(s.chunk), &prop, 0);
  r.check("vmm.cuMemCreate_within_quota", ok == CUDA_SUCCESS, "CUDA_SUCCESS", rc_name(ok));
  if (ok == CUDA_SUCCESS) (void)cuMemRelease(h);
}

}  // namespace

int main(int argc, char** argv) {
  const Args args(argc, argv);
  Report r;

  const CUresult init = cuInit(0);
  if (args.flag("--expect-init-failure")) {
    r.check("init_fails", init != CUDA_SUCCESS, "!=CUDA_SUCCESS", rc_name(init));
    return r.exit_code();
  }
  r.check("init", init == CUDA_SUCCESS, "CUDA_SUCCESS", rc_name(init));
  if (init != CUDA_SUCCESS) return r.exit_code();

  Setup s{args.quota(), args.size("--chunk", "256MiB"), args.size("--max-fill", "2GiB"),
          args.integer("--hold-ms", 300), 0};
  CUcontext ctx = nullptr;
  if (cuDeviceGet(&s.dev, 0) != CUDA_SUCCESS ||
      cuDevicePrimaryCtxRetain(&ctx, s.dev) != CUDA_SUCCESS ||
      cuCtxSetCurrent(ctx) != CUDA_SUCCESS) {
    r.check("context", false, "CUDA_SUCCESS", "error");
    return r.exit_code();
  }
  int driver_version = 0;
  (void)cuDriverGetVersion(&driver_version);
  r.info("driver_version", num(static_cast<std::uint64_t>(driver_version)));
  const int gpa_version = std::min(driver_version, CUDA_VERSION);

  // RTLD_LOCAL like cudart, cuBLAS and CuPy: symbols reachable only through this handle.
  void* libcuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  r.check("dlopen_libcuda", libcuda != nullptr, "handle", libcuda ? "handle" : "null");

  check_path(r, direct_api(), s);
  check_vmm(r, s);
  if (libcuda == nullptr) return r.exit_code();
  check_path(r, dlsym_api(libcuda), s);

  check_path(r,
             gpa_api("gpa",
                     [&](const char* base) {
                       void* fn = nullptr;
                       CUdriverProcAddressQueryResult status{};
                       (void)cuGetProcAddress_v2(base, &fn, gpa_version,
                                                 CU_GET_PROC_ADDRESS_DEFAULT, &status);
                       return fn;
                     }),
             s);

  const auto gpa_from_dlsym = sym<PFN_cuGetProcAddress_v12000>(libcuda, "cuGetProcAddress_v2");
  check_path(r,
             gpa_api("gpa_dlsym",
                     [&](const char* base) {
                       void* fn = nullptr;
                       CUdriverProcAddressQueryResult status{};
                       if (gpa_from_dlsym)
                         (void)gpa_from_dlsym(base, &fn, gpa_version, CU_GET_PROC_ADDRESS_DEFAULT,
                                              &status);
                       return fn;
                     }),
             s);

  const auto gpa_v1 = sym<PFN_cuGetProcAddress_v11030>(libcuda, "cuGetProcAddress");
  check_path(r,
             gpa_api("gpa_v1",
                     [&](const char* base) {
                       void* fn = nullptr;
                       if (gpa_v1)
                         (void)gpa_v1(base, &fn, gpa_version, CU_GET_PROC_ADDRESS_DEFAULT);
                       return fn;
                     }),
             s);

  (void)cuDevicePrimaryCtxRelease(s.dev);
  return r.exit_code();
}
