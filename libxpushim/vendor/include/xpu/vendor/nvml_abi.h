// The slice of NVIDIA's NVML ABI that xpushim and its simulated NVML use.
//
// nvml.h is not installable on the build machines (Debian ships it in non-free, and only an old
// one), so the few declarations we need are written here from NVIDIA's public documentation.
// Sizes and offsets are pinned by static_asserts against the values measured on driver 580.
// Each generation of a versioned entry point keeps its own layout: callers that resolve old names
// (PyTorch, NCCL, pynvml) get the old structs, and a hook must answer in the layout it was asked
// in.
#pragma once

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int nvmlReturn_t;  // the header's enum; int-sized on every supported ABI
enum {
  NVML_SUCCESS = 0,
  NVML_ERROR_UNINITIALIZED = 1,
  NVML_ERROR_INVALID_ARGUMENT = 2,
  NVML_ERROR_NOT_SUPPORTED = 3,
  NVML_ERROR_NO_PERMISSION = 4,
  NVML_ERROR_NOT_FOUND = 6,
  NVML_ERROR_INSUFFICIENT_SIZE = 7,
  NVML_ERROR_DRIVER_NOT_LOADED = 9,
  NVML_ERROR_FUNCTION_NOT_FOUND = 13,
  NVML_ERROR_UNKNOWN = 999,
};

typedef struct nvmlDevice_st* nvmlDevice_t;

typedef struct nvmlMemory_st {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;  // v1: includes the driver's reserved memory
} nvmlMemory_t;

typedef struct nvmlMemory_v2_st {
  unsigned int version;  // caller sets nvmlMemory_v2
  unsigned long long total;
  unsigned long long reserved;
  unsigned long long free;
  unsigned long long used;
} nvmlMemory_v2_t;

// NVML_STRUCT_VERSION(Memory, 2) = sizeof(nvmlMemory_v2_t) | 2 << 24.
#define nvmlMemory_v2 0x02000028u

typedef struct nvmlProcessInfo_v1_st {
  unsigned int pid;
  unsigned long long usedGpuMemory;
} nvmlProcessInfo_v1_t;

typedef struct nvmlProcessInfo_st {  // v2 and v3 entries share this layout
  unsigned int pid;
  unsigned long long usedGpuMemory;
  unsigned int gpuInstanceId;
  unsigned int computeInstanceId;
} nvmlProcessInfo_t;

typedef struct nvmlUtilization_st {
  unsigned int gpu;
  unsigned int memory;
} nvmlUtilization_t;

#define NVML_DEVICE_UUID_V2_BUFFER_SIZE 96

// Function types of the entry points xpushim calls or hooks (nvml.h has no typedefs for them).
typedef nvmlReturn_t (*xpu_nvmlInit_v2_t)(void);
typedef nvmlReturn_t (*xpu_nvmlDeviceGetHandleByUUID_t)(const char* uuid, nvmlDevice_t* device);
typedef nvmlReturn_t (*xpu_nvmlDeviceGetUUID_t)(nvmlDevice_t device, char* uuid,
                                                unsigned int length);
typedef nvmlReturn_t (*xpu_nvmlDeviceGetMemoryInfo_t)(nvmlDevice_t device, nvmlMemory_t* memory);
typedef nvmlReturn_t (*xpu_nvmlDeviceGetMemoryInfo_v2_t)(nvmlDevice_t device,
                                                         nvmlMemory_v2_t* memory);
typedef nvmlReturn_t (*xpu_nvmlDeviceGetComputeRunningProcesses_v3_t)(nvmlDevice_t device,
                                                                      unsigned int* infoCount,
                                                                      nvmlProcessInfo_t* infos);

#ifdef __cplusplus
}  // extern "C"

static_assert(sizeof(nvmlMemory_t) == 24, "nvmlMemory_t layout (driver 580)");
static_assert(sizeof(nvmlMemory_v2_t) == 40, "nvmlMemory_v2_t layout (driver 580)");
static_assert(offsetof(nvmlMemory_v2_t, reserved) == 16, "nvmlMemory_v2_t layout");
static_assert(offsetof(nvmlMemory_v2_t, used) == 32, "nvmlMemory_v2_t layout");
static_assert(nvmlMemory_v2 == (sizeof(nvmlMemory_v2_t) | (2u << 24)), "nvmlMemory_v2 word");
static_assert(sizeof(nvmlProcessInfo_v1_t) == 16, "nvmlProcessInfo_v1_t layout");
static_assert(sizeof(nvmlProcessInfo_t) == 24, "nvmlProcessInfo_t layout");
#endif
