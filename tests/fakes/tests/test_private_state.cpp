// Without XPU_FAKE_STATE the simulated devices live in the process; NVML still sees them, through
// the fake libcuda it loads like the real NVML does.
#include <stdlib.h>

#include "fake_loader.hpp"
#include "nvml_decls.h"
#include "xpu_catch.hpp"

namespace {
const bool g_private = [] {
  unsetenv("XPU_FAKE_STATE");
  setenv("XPU_FAKE_DEVICES", "1", 1);
  setenv("XPU_FAKE_TOTAL_MEM", "8589934592", 1);  // 8 GiB
  setenv("XPU_FAKE_CTX_BYTES", "0", 1);
  return true;
}();
}  // namespace

TEST_CASE("private state is shared by libcuda and NVML of one process") {
  fk::PrimaryCtx ctx;
  size_t free_b = 0;
  size_t total = 0;
  REQUIRE(FK(cuMemGetInfo_v2)(&free_b, &total) == CUDA_SUCCESS);
  CHECK(total == 8 * fk::kGiB);
  CHECK(free_b == total);  // XPU_FAKE_CTX_BYTES=0
  CUdeviceptr p = 0;
  REQUIRE(FK(cuMemAlloc_v2)(&p, fk::kGiB) == CUDA_SUCCESS);
  CHECK(fk::query("used_bytes") == fk::kGiB);

  REQUIRE(NV(nvmlInit_v2)() == NVML_SUCCESS);
  nvmlDevice_t d = nullptr;
  REQUIRE(NV(nvmlDeviceGetHandleByIndex_v2)(0, &d) == NVML_SUCCESS);
  nvmlMemory_v2_t m{};
  m.version = nvmlMemory_v2;
  REQUIRE(NV(nvmlDeviceGetMemoryInfo_v2)(d, &m) == NVML_SUCCESS);
  CHECK(m.used == fk::kGiB);
  CHECK(m.total - m.reserved == 8 * fk::kGiB);
  REQUIRE(FK(cuMemFree_v2)(p) == CUDA_SUCCESS);
  REQUIRE(NV(nvmlDeviceGetMemoryInfo_v2)(d, &m) == NVML_SUCCESS);
  CHECK(m.used == 0);
  REQUIRE(NV(nvmlShutdown)() == NVML_SUCCESS);
}
