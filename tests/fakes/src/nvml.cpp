// The simulated libnvidia-ml.so.1. It reads the same device state as the fake libcuda.so.1 (the
// XPU_FAKE_STATE file, or libcuda's private region in this process), so it works without cuInit
// and shows every process's usage, like the real NVML.
//
// Memory numbers keep the H100's relationship (research §4.1): NVML total = cuMemGetInfo total +
// 480 MiB reserved by the driver; v1 reports used = in-use + reserved, v2 reports the reserved
// part separately. A process is listed while it holds a context or memory on the device.
#include <dlfcn.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <vector>

#include "device_state.hpp"
#include "nvml_decls.h"

struct nvmlDevice_st {
  unsigned index;
};

namespace xpu_fake {

// XPU_FAKE_STATE unset: borrow the fake libcuda's private region (NVML itself loads libcuda.so.1,
// as the real one does), so both libraries describe the same devices in this process.
SharedState* private_region() {
  if (void* h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL)) {
    using RegionFn = void* (*)();
    if (auto fn = reinterpret_cast<RegionFn>(dlsym(h, "xpuFakeSharedStateRegion"))) {
      if (void* r = fn()) return static_cast<SharedState*>(r);
    }
  }
  void* p = mmap(nullptr, sizeof(SharedState), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);
  if (p == MAP_FAILED) return nullptr;
  auto* s = static_cast<SharedState*>(p);
  initialise_region(s);
  return s;
}

namespace {

constexpr uint64_t kNvmlReserved = 503316480ull;  // 480 MiB, measured on the H100
constexpr const char* kDriverVersionString = "580.159.04";

nvmlDevice_st g_devices[kMaxDevices] = {{0}, {1}, {2}, {3}, {4}, {5}, {6}, {7}};
std::atomic<int> g_init_count{0};

bool initialised() { return g_init_count.load(std::memory_order_acquire) > 0; }

nvmlReturn_t init() {
  if (state() == nullptr) return NVML_ERROR_DRIVER_NOT_LOADED;
  g_init_count.fetch_add(1, std::memory_order_acq_rel);
  return NVML_SUCCESS;
}

// Validates a handle; *dev = its index.
nvmlReturn_t device_index(nvmlDevice_t d, unsigned* dev) {
  if (!initialised()) return NVML_ERROR_UNINITIALIZED;
  // Handles are addresses inside g_devices; anything else is rejected without dereferencing it.
  const auto a = reinterpret_cast<uintptr_t>(d);
  const auto base = reinterpret_cast<uintptr_t>(&g_devices[0]);
  if (a < base || a >= base + sizeof g_devices || (a - base) % sizeof(nvmlDevice_st) != 0) {
    return NVML_ERROR_INVALID_ARGUMENT;
  }
  *dev = d->index;
  if (*dev >= state()->device_count) return NVML_ERROR_INVALID_ARGUMENT;
  return NVML_SUCCESS;
}

void uuid_string(unsigned dev, char* out, size_t len) {
  // "GPU-" + the CUDA UUID bytes {fa ce 00 .. 00 <index>} as lowercase 8-4-4-4-12 hex.
  unsigned char b[16] = {0xfa, 0xce};
  b[15] = static_cast<unsigned char>(dev);
  snprintf(out, len, "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
           b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
           b[14], b[15]);
}

nvmlReturn_t copy_string(const char* s, char* out, unsigned len) {
  if (out == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  if (strlen(s) + 1 > len) return NVML_ERROR_INSUFFICIENT_SIZE;
  memcpy(out, s, strlen(s) + 1);
  return NVML_SUCCESS;
}

void device_memory(unsigned dev, uint64_t* total, uint64_t* used) {
  SharedState* s = state();
  SharedLock lk(s);
  reap_locked(s, true);
  *total = s->dev[dev].total;
  *used = std::min(device_used_locked(s, dev), *total);
}

struct ProcessRow {
  unsigned pid;
  uint64_t used;
};

std::vector<ProcessRow> processes(unsigned dev) {
  SharedState* s = state();
  std::vector<ProcessRow> rows;
  SharedLock lk(s);
  reap_locked(s, true);
  for (const auto& r : s->pids) {
    if (r.state == kPidLive && (r.contexts[dev] != 0 || r.used[dev] != 0)) {
      rows.push_back({static_cast<unsigned>(r.pid), r.used[dev]});
    }
  }
  return rows;
}

// The NVML "ask with *infoCount = 0 first" protocol, for any entry layout.
template <typename Info, typename Fill>
nvmlReturn_t list_processes(nvmlDevice_t d, unsigned* count, Info* infos, Fill fill) {
  unsigned dev = 0;
  if (nvmlReturn_t r = device_index(d, &dev); r != NVML_SUCCESS) return r;
  if (count == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  const auto rows = processes(dev);
  const auto n = static_cast<unsigned>(rows.size());
  if (*count < n) {
    *count = n;
    return NVML_ERROR_INSUFFICIENT_SIZE;
  }
  if (n > 0 && infos == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  for (unsigned i = 0; i < n; ++i) fill(infos[i], rows[i]);
  *count = n;
  return NVML_SUCCESS;
}

}  // namespace
}  // namespace xpu_fake

using namespace xpu_fake;

#define XPU_NVML_EXPORT __attribute__((visibility("default")))

extern "C" {

XPU_NVML_EXPORT nvmlReturn_t nvmlInit(void) { return init(); }
XPU_NVML_EXPORT nvmlReturn_t nvmlInit_v2(void) { return init(); }
XPU_NVML_EXPORT nvmlReturn_t nvmlInitWithFlags(unsigned int flags) {
  (void)flags;
  return init();
}

XPU_NVML_EXPORT nvmlReturn_t nvmlShutdown(void) {
  int c = g_init_count.load();
  while (c > 0 && !g_init_count.compare_exchange_weak(c, c - 1)) {
  }
  return c > 0 ? NVML_SUCCESS : NVML_ERROR_UNINITIALIZED;
}

XPU_NVML_EXPORT const char* nvmlErrorString(nvmlReturn_t result) {
  switch (result) {
    case NVML_SUCCESS:
      return "Success";
    case NVML_ERROR_UNINITIALIZED:
      return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT:
      return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED:
      return "Not Supported";
    case NVML_ERROR_NO_PERMISSION:
      return "Insufficient Permissions";
    case NVML_ERROR_NOT_FOUND:
      return "Not Found";
    case NVML_ERROR_INSUFFICIENT_SIZE:
      return "Insufficient Size";
    case NVML_ERROR_DRIVER_NOT_LOADED:
      return "Driver Not Loaded";
    case NVML_ERROR_FUNCTION_NOT_FOUND:
      return "Function Not Found";
    case NVML_ERROR_ARGUMENT_VERSION_MISMATCH:
      return "Argument Version Mismatch";
    default:
      return "Unknown Error";
  }
}

XPU_NVML_EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char* version, unsigned int length) {
  if (!initialised()) return NVML_ERROR_UNINITIALIZED;
  return copy_string(kDriverVersionString, version, length);
}

XPU_NVML_EXPORT nvmlReturn_t nvmlSystemGetNVMLVersion(char* version, unsigned int length) {
  if (!initialised()) return NVML_ERROR_UNINITIALIZED;
  return copy_string("13.580.159.04", version, length);
}

XPU_NVML_EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion(int* cudaDriverVersion) {
  if (!initialised()) return NVML_ERROR_UNINITIALIZED;
  if (cudaDriverVersion == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  *cudaDriverVersion = 13000;
  return NVML_SUCCESS;
}
XPU_NVML_EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int* cudaDriverVersion) {
  return nvmlSystemGetCudaDriverVersion(cudaDriverVersion);
}

XPU_NVML_EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int* deviceCount) {
  if (!initialised()) return NVML_ERROR_UNINITIALIZED;
  if (deviceCount == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  *deviceCount = state()->device_count;
  return NVML_SUCCESS;
}
XPU_NVML_EXPORT nvmlReturn_t nvmlDeviceGetCount(unsigned int* deviceCount) {
  return nvmlDeviceGetCount_v2(deviceCount);
}

XPU_NVML_EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index,
                                                           nvmlDevice_t* device) {
  if (!initialised()) return NVML_ERROR_UNINITIALIZED;
  if (device == nullptr || index >= state()->device_count) return NVML_ERROR_INVALID_ARGUMENT;
  *device = &g_devices[index];
  return NVML_SUCCESS;
}
XPU_NVML_EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t* device) {
  return nvmlDeviceGetHandleByIndex_v2(index, device);
}

XPU_NVML_EXPORT nvmlReturn_t nvmlDeviceGetHandleByUUID(const char* uuid, nvmlDevice_t* device) {
  if (!initialised()) return NVML_ERROR_UNINITIALIZED;
  if (uuid == nullptr || device == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  for (unsigned i = 0; i < state()->device_count; ++i) {
    char buf[NVML_DEVICE_UUID_BUFFER_SIZE];
    uuid_string(i, buf, sizeof buf);
    if (strcmp(buf, uuid) == 0) {
      *device = &g_devices[i];
      return NVML_SUCCESS;
    }
  }
  return NVML_ERROR_NOT_FOUND;
}

XPU_NVML_EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char* uuid,
                                               unsigned int length) {
  unsigned dev = 0;
  if (nvmlReturn_t r = device_index(device, &dev); r != NVML_SUCCESS) return r;
  char buf[NVML_DEVICE_UUID_BUFFER_SIZE];
  uuid_string(dev, buf, sizeof buf);
  return copy_string(buf, uuid, length);
}

XPU_NVML_EXPORT nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int* index) {
  unsigned dev = 0;
  if (nvmlReturn_t r = device_index(device, &dev); r != NVML_SUCCESS) return r;
  if (index == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  *index = dev;
  return NVML_SUCCESS;
}

XPU_NVML_EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char* name,
                                               unsigned int length) {
  unsigned dev = 0;
  if (nvmlReturn_t r = device_index(device, &dev); r != NVML_SUCCESS) return r;
  return copy_string("NVIDIA H100 (xpushim simulated)", name, length);
}

XPU_NVML_EXPORT nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t device, int* major,
                                                                int* minor) {
  unsigned dev = 0;
  if (nvmlReturn_t r = device_index(device, &dev); r != NVML_SUCCESS) return r;
  if (major == nullptr || minor == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  *major = 9;
  *minor = 0;
  return NVML_SUCCESS;
}

XPU_NVML_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t* memory) {
  unsigned dev = 0;
  if (nvmlReturn_t r = device_index(device, &dev); r != NVML_SUCCESS) return r;
  if (memory == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  uint64_t total = 0;
  uint64_t used = 0;
  device_memory(dev, &total, &used);
  memory->total = total + kNvmlReserved;
  memory->used = used + kNvmlReserved;  // v1: used includes the driver's reservation
  memory->free = total - used;
  return NVML_SUCCESS;
}

XPU_NVML_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device,
                                                        nvmlMemory_v2_t* memory) {
  unsigned dev = 0;
  if (nvmlReturn_t r = device_index(device, &dev); r != NVML_SUCCESS) return r;
  if (memory == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  if (memory->version != nvmlMemory_v2) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
  uint64_t total = 0;
  uint64_t used = 0;
  device_memory(dev, &total, &used);
  memory->total = total + kNvmlReserved;
  memory->reserved = kNvmlReserved;
  memory->used = used;
  memory->free = total - used;
  return NVML_SUCCESS;
}

XPU_NVML_EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses(nvmlDevice_t device,
                                                                  unsigned int* infoCount,
                                                                  nvmlProcessInfo_v1_t* infos) {
  return list_processes(device, infoCount, infos, [](nvmlProcessInfo_v1_t& o, const ProcessRow& r) {
    o.pid = r.pid;
    o.usedGpuMemory = r.used;
  });
}

XPU_NVML_EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v2(nvmlDevice_t device,
                                                                     unsigned int* infoCount,
                                                                     nvmlProcessInfo_t* infos) {
  return list_processes(device, infoCount, infos, [](nvmlProcessInfo_t& o, const ProcessRow& r) {
    o.pid = r.pid;
    o.usedGpuMemory = r.used;
    o.gpuInstanceId = NVML_VALUE_NOT_AVAILABLE;  // not a MIG device
    o.computeInstanceId = NVML_VALUE_NOT_AVAILABLE;
  });
}

XPU_NVML_EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device,
                                                                     unsigned int* infoCount,
                                                                     nvmlProcessInfo_t* infos) {
  return nvmlDeviceGetComputeRunningProcesses_v2(device, infoCount, infos);
}

// Approximate: the share of wall time the device's kernels took since this process's previous
// call (since the state was created, for the first call), capped at 100 %.
XPU_NVML_EXPORT nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device,
                                                           nvmlUtilization_t* utilization) {
  unsigned dev = 0;
  if (nvmlReturn_t r = device_index(device, &dev); r != NVML_SUCCESS) return r;
  if (utilization == nullptr) return NVML_ERROR_INVALID_ARGUMENT;
  static std::mutex mu;
  static uint64_t last_t[kMaxDevices] = {};
  static uint64_t last_busy[kMaxDevices] = {};
  SharedState* s = state();
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const uint64_t now =
      static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
  const uint64_t busy = s->dev[dev].busy_total_ns.load();
  std::lock_guard<std::mutex> lk(mu);
  const uint64_t t0 = last_t[dev] != 0 ? last_t[dev] : s->created_ns;
  const uint64_t dt = now > t0 ? now - t0 : 0;
  const uint64_t db = busy - std::min(busy, last_busy[dev]);
  last_t[dev] = now;
  last_busy[dev] = busy;
  utilization->gpu = dt == 0 ? 0 : static_cast<unsigned>(std::min<uint64_t>(100, db * 100 / dt));
  utilization->memory = 0;
  return NVML_SUCCESS;
}

}  // extern "C"
