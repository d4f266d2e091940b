// The simulated NVML reads the same device state as the simulated libcuda.
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "fake_loader.hpp"
#include "nvml_decls.h"
#include "xpu_catch.hpp"

using fk::kGiB;
using fk::query;

TEST_CASE("NVML init and devices and UUIDs") {
  REQUIRE(fk::nvml() != nullptr);
  unsigned n = 0;
  CHECK(NV(nvmlDeviceGetCount_v2)(&n) == NVML_ERROR_UNINITIALIZED);
  REQUIRE(NV(nvmlInit_v2)() == NVML_SUCCESS);
  REQUIRE(NV(nvmlDeviceGetCount_v2)(&n) == NVML_SUCCESS);
  CHECK(n == 2);
  REQUIRE(NV(nvmlDeviceGetCount)(&n) == NVML_SUCCESS);
  CHECK(n == 2);
  nvmlDevice_t d1 = nullptr;
  REQUIRE(NV(nvmlDeviceGetHandleByIndex_v2)(1, &d1) == NVML_SUCCESS);
  CHECK(NV(nvmlDeviceGetHandleByIndex)(2, &d1) == NVML_ERROR_INVALID_ARGUMENT);
  REQUIRE(NV(nvmlDeviceGetHandleByIndex)(1, &d1) == NVML_SUCCESS);
  char uuid[96] = {};
  REQUIRE(NV(nvmlDeviceGetUUID)(d1, uuid, sizeof uuid) == NVML_SUCCESS);
  CHECK(std::string(uuid) == "GPU-face0000-0000-0000-0000-000000000001");
  CHECK(NV(nvmlDeviceGetUUID)(d1, uuid, 10) == NVML_ERROR_INSUFFICIENT_SIZE);
  nvmlDevice_t by_uuid = nullptr;
  REQUIRE(NV(nvmlDeviceGetHandleByUUID)("GPU-face0000-0000-0000-0000-000000000001", &by_uuid) ==
          NVML_SUCCESS);
  CHECK(by_uuid == d1);
  CHECK(NV(nvmlDeviceGetHandleByUUID)("GPU-nope", &by_uuid) == NVML_ERROR_NOT_FOUND);
  unsigned idx = 9;
  REQUIRE(NV(nvmlDeviceGetIndex)(d1, &idx) == NVML_SUCCESS);
  CHECK(idx == 1);
  char name[64] = {};
  REQUIRE(NV(nvmlDeviceGetName)(d1, name, sizeof name) == NVML_SUCCESS);
  CHECK(std::string(name).find("H100") != std::string::npos);
  char ver[80] = {};
  REQUIRE(NV(nvmlSystemGetDriverVersion)(ver, sizeof ver) == NVML_SUCCESS);
  CHECK(std::string(ver) == "580.159.04");
  CHECK(std::string(NV(nvmlErrorString)(NVML_ERROR_INSUFFICIENT_SIZE)) == "Insufficient Size");

  // The same bytes as cuDeviceGetUuid.
  REQUIRE(FK(cuInit)(0) == CUDA_SUCCESS);
  CUuuid u{};
  REQUIRE(FK(cuDeviceGetUuid_v2)(&u, 1) == CUDA_SUCCESS);
  char hex[40] = {};
  for (int i = 0; i < 16; ++i) {
    snprintf(hex + 2 * i, 3, "%02x", static_cast<unsigned char>(u.bytes[i]));
  }
  std::string s(uuid + 4);
  s.erase(std::remove(s.begin(), s.end(), '-'), s.end());
  CHECK(s == hex);
  REQUIRE(NV(nvmlShutdown)() == NVML_SUCCESS);
}

TEST_CASE("NVML memory and processes agree with the driver") {
  REQUIRE(NV(nvmlInit)() == NVML_SUCCESS);
  fk::PrimaryCtx ctx;
  CUdeviceptr p = 0;
  REQUIRE(FK(cuMemAlloc_v2)(&p, kGiB) == CUDA_SUCCESS);
  nvmlDevice_t d = nullptr;
  REQUIRE(NV(nvmlDeviceGetHandleByIndex_v2)(0, &d) == NVML_SUCCESS);

  size_t cu_free = 0;
  size_t cu_total = 0;
  REQUIRE(FK(cuMemGetInfo_v2)(&cu_free, &cu_total) == CUDA_SUCCESS);
  nvmlMemory_v2_t m2{};
  m2.version = nvmlMemory_v2;
  REQUIRE(NV(nvmlDeviceGetMemoryInfo_v2)(d, &m2) == NVML_SUCCESS);
  CHECK(m2.total - m2.reserved == cu_total);
  CHECK(m2.reserved == 503316480ull);
  CHECK(m2.free == cu_free);
  CHECK(m2.used == query("used_bytes"));
  nvmlMemory_t m1{};
  REQUIRE(NV(nvmlDeviceGetMemoryInfo)(d, &m1) == NVML_SUCCESS);
  CHECK(m1.total == m2.total);
  CHECK(m1.used == m2.used + m2.reserved);
  CHECK(m1.free == m2.free);
  m2.version = 1;
  CHECK(NV(nvmlDeviceGetMemoryInfo_v2)(d, &m2) == NVML_ERROR_ARGUMENT_VERSION_MISMATCH);

  unsigned count = 0;
  REQUIRE(NV(nvmlDeviceGetComputeRunningProcesses_v3)(d, &count, nullptr) ==
          NVML_ERROR_INSUFFICIENT_SIZE);
  REQUIRE(count >= 1);
  std::vector<nvmlProcessInfo_t> v3(count);
  REQUIRE(NV(nvmlDeviceGetComputeRunningProcesses_v3)(d, &count, v3.data()) == NVML_SUCCESS);
  bool found = false;
  for (unsigned i = 0; i < count; ++i) {
    if (v3[i].pid == static_cast<unsigned>(getpid())) {
      found = true;
      CHECK(v3[i].usedGpuMemory == query("pid_used_bytes"));
      CHECK(v3[i].gpuInstanceId == 0xFFFFFFFFu);
    }
  }
  CHECK(found);
  std::vector<nvmlProcessInfo_v1_t> v1(count);
  REQUIRE(NV(nvmlDeviceGetComputeRunningProcesses)(d, &count, v1.data()) == NVML_SUCCESS);
  CHECK(v1[0].usedGpuMemory > 0);
  std::vector<nvmlProcessInfo_t> v2(count);
  REQUIRE(NV(nvmlDeviceGetComputeRunningProcesses_v2)(d, &count, v2.data()) == NVML_SUCCESS);

  nvmlUtilization_t util{};
  REQUIRE(NV(nvmlDeviceGetUtilizationRates)(d, &util) == NVML_SUCCESS);
  CHECK(util.gpu <= 100);
  REQUIRE(FK(cuMemFree_v2)(p) == CUDA_SUCCESS);
  REQUIRE(NV(nvmlShutdown)() == NVML_SUCCESS);
}
