// A stand-in for a real CUDA application, for the preload tests. It reaches the driver through
// one of the paths real programs use, chosen on the command line:
//   direct  symbols bound at link time (programs linked with -lcuda; built as xpu_probe_direct)
//   dlsym   dlopen("libcuda.so.1") + dlsym of export names (cuBLAS, XLA, CuPy, ctypes)
//   gpa     cuGetProcAddress_v2 by base name and version (cudart, PyTorch's DriverAPI)
//   gpa_pt  the same with the per-thread-default-stream flag (--default-stream per-thread builds)
// and runs one scenario, printing `key=value` results on stdout.
#define __CUDA_API_VERSION_INTERNAL 1
#include <cuda.h>
#include <cudaTypedefs.h>
#include <dlfcn.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "xpu/vendor/nvml_abi.h"

namespace {

struct Api {
  PFN_cuInit_v2000 init;
  PFN_cuDeviceGet_v2000 device_get;
  PFN_cuDevicePrimaryCtxRetain_v7000 retain;
  PFN_cuCtxSetCurrent_v4000 set_current;
  PFN_cuMemGetInfo_v3020 mem_get_info;
  PFN_cuDeviceTotalMem_v3020 total_mem;
  PFN_cuMemAlloc_v3020 alloc;
  PFN_cuMemFree_v3020 free;
  PFN_cuMemAllocPitch_v3020 alloc_pitch;
  PFN_cuMemAllocManaged_v6000 alloc_managed;
  PFN_cuMemAllocAsync_v11020 alloc_async;
  PFN_cuMemFreeAsync_v11020 free_async;
  PFN_cuStreamSynchronize_v2000 stream_sync;
  PFN_cuMemCreate_v10020 mem_create;
  PFN_cuMemRelease_v10020 mem_release;
  PFN_cuArrayCreate_v3020 array_create;
  PFN_cuArrayDestroy_v2000 array_destroy;
};

std::string path;

#if defined(XPU_PROBE_DIRECT)
Api load_direct() {
  return Api{&cuInit,
             &cuDeviceGet,
             &cuDevicePrimaryCtxRetain,
             &cuCtxSetCurrent,
             &cuMemGetInfo_v2,
             &cuDeviceTotalMem_v2,
             &cuMemAlloc_v2,
             &cuMemFree_v2,
             &cuMemAllocPitch_v2,
             &cuMemAllocManaged,
             &cuMemAllocAsync,
             &cuMemFreeAsync,
             &cuStreamSynchronize,
             &cuMemCreate,
             &cuMemRelease,
             &cuArrayCreate_v2,
             &cuArrayDestroy};
}
#endif

void* driver() {
  static void* h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (h == nullptr) {
    std::fprintf(stderr, "probe: cannot dlopen libcuda.so.1: %s\n", dlerror());
    std::exit(90);
  }
  return h;
}

template <class F>
void by_name(F& f, const char* export_name) {
  f = reinterpret_cast<F>(dlsym(driver(), export_name));
}

template <class F>
void by_gpa(F& f, const char* base, int version, cuuint64_t flags) {
  static auto gpa =
      reinterpret_cast<PFN_cuGetProcAddress_v12000>(dlsym(driver(), "cuGetProcAddress_v2"));
  CUdriverProcAddressQueryResult status{};
  void* p = nullptr;
  if (gpa(base, &p, version, flags, &status) != CUDA_SUCCESS) p = nullptr;
  f = reinterpret_cast<F>(p);
}

Api load(const std::string& how) {
#if defined(XPU_PROBE_DIRECT)
  if (how == "direct") return load_direct();
#endif
  Api a{};
  if (how == "dlsym") {
    by_name(a.init, "cuInit");
    by_name(a.device_get, "cuDeviceGet");
    by_name(a.retain, "cuDevicePrimaryCtxRetain");
    by_name(a.set_current, "cuCtxSetCurrent");
    by_name(a.mem_get_info, "cuMemGetInfo_v2");
    by_name(a.total_mem, "cuDeviceTotalMem_v2");
    by_name(a.alloc, "cuMemAlloc_v2");
    by_name(a.free, "cuMemFree_v2");
    by_name(a.alloc_pitch, "cuMemAllocPitch_v2");
    by_name(a.alloc_managed, "cuMemAllocManaged");
    by_name(a.alloc_async, "cuMemAllocAsync");
    by_name(a.free_async, "cuMemFreeAsync");
    by_name(a.stream_sync, "cuStreamSynchronize");
    by_name(a.mem_create, "cuMemCreate");
    by_name(a.mem_release, "cuMemRelease");
    by_name(a.array_create, "cuArrayCreate_v2");
    by_name(a.array_destroy, "cuArrayDestroy");
    return a;
  }
  const cuuint64_t flags = how == "gpa_pt" ? CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM : 0;
  by_gpa(a.init, "cuInit", 13000, flags);
  by_gpa(a.device_get, "cuDeviceGet", 13000, flags);
  by_gpa(a.retain, "cuDevicePrimaryCtxRetain", 13000, flags);
  by_gpa(a.set_current, "cuCtxSetCurrent", 13000, flags);
  by_gpa(a.mem_get_info, "cuMemGetInfo", 13000, flags);
  by_gpa(a.total_mem, "cuDeviceTotalMem", 13000, flags);
  by_gpa(a.alloc, "cuMemAlloc", 13000, flags);
  by_gpa(a.free, "cuMemFree", 13000, flags);
  by_gpa(a.alloc_pitch, "cuMemAllocPitch", 13000, flags);
  by_gpa(a.alloc_managed, "cuMemAllocManaged", 13000, flags);
  by_gpa(a.alloc_async, "cuMemAllocAsync", 13000, flags);
  by_gpa(a.free_async, "cuMemFreeAsync", 13000, flags);
  by_gpa(a.stream_sync, "cuStreamSynchronize", 13000, flags);
  by_gpa(a.mem_create, "cuMemCreate", 13000, flags);
  by_gpa(a.mem_release, "cuMemRelease", 13000, flags);
  by_gpa(a.array_create, "cuArrayCreate", 13000, flags);
  by_gpa(a.array_destroy, "cuArrayDestroy", 13000, flags);
  return a;
}

constexpr std::size_t MiB = 1ULL << 20;

Api api;

void setup() {
  const CUresult rc = api.init(0);
  std::printf("init=%d\n", static_cast<int>(rc));
  if (rc != CUDA_SUCCESS) {
    std::fflush(stdout);
    std::exit(0);
  }
  CUdevice dev = 0;
  CUcontext ctx = nullptr;
  api.device_get(&dev, 0);
  if (api.retain(&ctx, dev) != CUDA_SUCCESS || api.set_current(ctx) != CUDA_SUCCESS) {
    std::printf("context=failed\n");
    std::exit(91);
  }
}

std::size_t free_now() {
  std::size_t f = 0, t = 0;
  api.mem_get_info(&f, &t);
  return f;
}

const char* library_of(void* p) {
  Dl_info info{};
  if (p == nullptr || dladdr(p, &info) == 0 || info.dli_fname == nullptr) return "none";
  const char* slash = std::strrchr(info.dli_fname, '/');
  return slash != nullptr ? slash + 1 : info.dli_fname;
}

int scenario_info() {
  std::size_t f = 0, t = 0, dt = 0;
  const CUresult rc = api.mem_get_info(&f, &t);
  api.total_mem(&dt, 0);
  std::printf("info_rc=%d total=%zu free=%zu device_total=%zu\n", rc, t, f, dt);
  // NULL handling stays the driver's.
  std::printf("null_free_rc=%d\n", static_cast<int>(api.mem_get_info(nullptr, &t)));
  return 0;
}

int scenario_fill(std::size_t chunk) {
  std::vector<CUdeviceptr> held;
  CUresult rc = CUDA_SUCCESS;
  for (;;) {
    CUdeviceptr p = 0;
    rc = api.alloc(&p, chunk);
    if (rc != CUDA_SUCCESS) break;
    held.push_back(p);
  }
  std::printf("allocated=%zu count=%zu error=%d free_at_full=%zu\n", held.size() * chunk,
              held.size(), static_cast<int>(rc), free_now());
  api.free(held.back());
  held.pop_back();
  CUdeviceptr again = 0;
  std::printf("realloc=%d\n", static_cast<int>(api.alloc(&again, chunk)));
  held.push_back(again);
  for (CUdeviceptr p : held) api.free(p);
  std::printf("free_after=%zu\n", free_now());
  return 0;
}

// Each allocation API: how much the view's free memory moved when allocating, then freeing.
int scenario_kinds() {
  auto report = [](const char* kind, CUresult rc, std::size_t before, std::size_t during,
                   std::size_t after) {
    std::printf("kind=%s rc=%d charged=%zu returned=%zu\n", kind, static_cast<int>(rc),
                before - during, after >= during ? after - during : 0);
  };
  {
    const std::size_t b = free_now();
    CUdeviceptr p = 0;
    std::size_t pitch = 0;
    const CUresult rc = api.alloc_pitch(&p, &pitch, 1000, 1024, 4);
    const std::size_t d = free_now();
    api.free(p);
    report("pitch", rc, b, d, free_now());
  }
  {
    const std::size_t b = free_now();
    CUdeviceptr p = 0;
    const CUresult rc = api.alloc_managed(&p, 64 * MiB, CU_MEM_ATTACH_GLOBAL);
    const std::size_t d = free_now();
    api.free(p);
    report("managed", rc, b, d, free_now());
  }
  {
    const std::size_t b = free_now();
    CUdeviceptr p = 0;
    const CUresult rc = api.alloc_async(&p, 64 * MiB, nullptr);
    const std::size_t d = free_now();
    api.free_async(p, nullptr);
    api.stream_sync(nullptr);  // the pool gives the bytes back at a synchronisation
    usleep(150000);            // the view re-reads pool reservations at most 10x per second
    report("async", rc, b, d, free_now());
  }
  {
    const std::size_t b = free_now();
    CUmemAllocationProp prop{};
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = 0;
    CUmemGenericAllocationHandle h = 0;
    const CUresult rc = api.mem_create(&h, 64 * MiB, &prop, 0);
    const std::size_t d = free_now();
    api.mem_release(h);
    report("vmm", rc, b, d, free_now());
  }
  {
    const std::size_t b = free_now();
    CUDA_ARRAY_DESCRIPTOR desc{};
    desc.Width = 4096;
    desc.Height = 4096;
    desc.Format = CU_AD_FORMAT_FLOAT;
    desc.NumChannels = 1;
    CUarray arr = nullptr;
    const CUresult rc = api.array_create(&arr, &desc);
    const std::size_t d = free_now();
    api.array_destroy(arr);
    report("array", rc, b, d, free_now());
  }
  return 0;
}

int scenario_hold(std::size_t bytes) {
  CUdeviceptr p = 0;
  std::printf("held rc=%d\n", static_cast<int>(api.alloc(&p, bytes)));
  std::fflush(stdout);
  for (;;) pause();
}

int scenario_try(std::size_t bytes) {
  CUdeviceptr p = 0;
  std::printf("try rc=%d\n", static_cast<int>(api.alloc(&p, bytes)));
  return 0;
}

// Waits for a go byte on stdin (so that a test can start many at once, contexts created),
// allocates chunks until refused, reports what it holds, keeps it until stdin closes.
int scenario_grab(std::size_t chunk) {
  std::printf("ready\n");
  std::fflush(stdout);
  char go;
  if (read(0, &go, 1) != 1) return 95;
  std::size_t held = 0;
  CUdeviceptr p = 0;
  while (api.alloc(&p, chunk) == CUDA_SUCCESS) held += chunk;
  std::printf("grabbed=%zu\n", held);
  std::fflush(stdout);
  char c;
  while (read(0, &c, 1) > 0) {
  }
  return 0;
}

int scenario_gpa() {
  auto gpa = reinterpret_cast<PFN_cuGetProcAddress_v12000>(dlsym(driver(), "cuGetProcAddress_v2"));
  auto show = [&](const char* name, const char* base, int version, cuuint64_t flags) {
    void* p = reinterpret_cast<void*>(0x1);  // detects an untouched out-parameter
    CUdriverProcAddressQueryResult status = static_cast<CUdriverProcAddressQueryResult>(-1);
    const CUresult rc = gpa(base, &p, version, flags, &status);
    std::printf("%s rc=%d status=%d lib=%s\n", name, static_cast<int>(rc), static_cast<int>(status),
                p == reinterpret_cast<void*>(0x1) ? "untouched" : library_of(p));
  };
  std::printf("gpa_self lib=%s\n", library_of(reinterpret_cast<void*>(gpa)));
  show("alloc13000", "cuMemAlloc", 13000, 0);
  show("alloc2000", "cuMemAlloc", 2000, 0);
  show("alloc1000", "cuMemAlloc", 1000, 0);
  show("alloc13010", "cuMemAlloc", 13010, 0);
  show("alloc_v2name", "cuMemAlloc_v2", 13000, 0);
  show("async_pt", "cuMemAllocAsync", 12000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM);
  show("name", "cuDeviceGetName", 13000, 0);
  show("gpa", "cuGetProcAddress", 12000, 0);
  show("gpa4", "cuGetProcAddress", 11030, 0);
  show("badflags", "cuMemAlloc", 13000, 4);
  // dlsym: hooked names come back hooked, others are the driver's, RTLD_NEXT still works.
  std::printf("dlsym_alloc lib=%s\n", library_of(dlsym(driver(), "cuMemAlloc_v2")));
  std::printf("dlsym_name lib=%s\n", library_of(dlsym(driver(), "cuDeviceGetName")));
  std::printf("dlsym_next_malloc=%s\n", dlsym(RTLD_NEXT, "malloc") != nullptr ? "found" : "null");
  return 0;
}

int scenario_nvml() {
  void* h = dlopen("libnvidia-ml.so.1", RTLD_NOW);
  if (h == nullptr) return 92;
  auto init = reinterpret_cast<nvmlReturn_t (*)()>(dlsym(h, "nvmlInit_v2"));
  auto by_index = reinterpret_cast<nvmlReturn_t (*)(unsigned, nvmlDevice_t*)>(
      dlsym(h, "nvmlDeviceGetHandleByIndex_v2"));
  auto info = reinterpret_cast<xpu_nvmlDeviceGetMemoryInfo_t>(dlsym(h, "nvmlDeviceGetMemoryInfo"));
  auto info2 =
      reinterpret_cast<xpu_nvmlDeviceGetMemoryInfo_v2_t>(dlsym(h, "nvmlDeviceGetMemoryInfo_v2"));
  nvmlDevice_t dev = nullptr;
  if (init() != NVML_SUCCESS || by_index(0, &dev) != NVML_SUCCESS) return 93;
  nvmlMemory_t m{};
  nvmlMemory_v2_t m2{};
  m2.version = nvmlMemory_v2;
  info(dev, &m);
  info2(dev, &m2);
  std::printf("nvml_total=%llu nvml_free=%llu nvml_v2_total=%llu\n", m.total, m.free, m2.total);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: probe direct|dlsym|gpa|gpa_pt SCENARIO [ARG]\n");
    return 2;
  }
  path = argv[1];
  const std::string scenario = argv[2];
  const std::size_t arg = argc > 3 ? std::strtoull(argv[3], nullptr, 10) * MiB : 0;
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  api = load(path);
  if (api.init == nullptr || api.alloc == nullptr || api.mem_get_info == nullptr) {
    std::printf("load=failed\n");
    return 94;
  }
  if (scenario == "gpa") return scenario_gpa();
  setup();
  if (scenario == "info") return scenario_info();
  if (scenario == "fill") return scenario_fill(arg);
  if (scenario == "kinds") return scenario_kinds();
  if (scenario == "hold") return scenario_hold(arg);
  if (scenario == "try") return scenario_try(arg);
  if (scenario == "grab") return scenario_grab(arg);
  if (scenario == "nvml") return scenario_nvml();
  std::fprintf(stderr, "probe: unknown scenario %s\n", scenario.c_str());
  return 2;
}
