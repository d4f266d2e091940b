// Simulated execution: 1 block of gridDimX = 1 us on one timeline per device.
#include <cuda.h>

#include <thread>
#include <vector>

#include "fake_loader.hpp"
#include "xpu_catch.hpp"

using fk::query;

namespace {

CUresult launch(CUstream s, unsigned blocks) {
  return FK(cuLaunchKernel)(fk::dummy_function(), blocks, 1, 1, 128, 1, 1, 0, s, nullptr, nullptr);
}

}  // namespace

TEST_CASE("a kernel runs gridDimX microseconds and events follow the clock") {
  fk::PrimaryCtx ctx;
  CUstream s = nullptr;
  REQUIRE(FK(cuStreamCreate)(&s, 0) == CUDA_SUCCESS);
  CUevent start = nullptr;
  CUevent stop = nullptr;
  REQUIRE(FK(cuEventCreate)(&start, 0) == CUDA_SUCCESS);
  REQUIRE(FK(cuEventCreate)(&stop, 0) == CUDA_SUCCESS);
  const auto busy0 = query("pid_busy_ns");
  const auto kernels0 = query("pid_kernel_count");

  const uint64_t t0 = fk::now_ns();
  REQUIRE(FK(cuEventRecord)(start, s) == CUDA_SUCCESS);
  REQUIRE(launch(s, 50000) == CUDA_SUCCESS);  // 50 ms
  REQUIRE(FK(cuEventRecord)(stop, s) == CUDA_SUCCESS);
  CHECK(FK(cuEventQuery)(stop) == CUDA_ERROR_NOT_READY);
  CHECK(FK(cuStreamQuery)(s) == CUDA_ERROR_NOT_READY);
  float ms = 0;
  CHECK(FK(cuEventElapsedTime_v2)(&ms, start, stop) == CUDA_ERROR_NOT_READY);
  REQUIRE(FK(cuEventSynchronize)(stop) == CUDA_SUCCESS);
  const uint64_t waited = fk::now_ns() - t0;
  CHECK(waited >= 50000000);
  CHECK(waited < 1000000000);
  CHECK(FK(cuEventQuery)(stop) == CUDA_SUCCESS);
  CHECK(FK(cuStreamQuery)(s) == CUDA_SUCCESS);
  REQUIRE(FK(cuEventElapsedTime_v2)(&ms, start, stop) == CUDA_SUCCESS);
  CHECK(ms >= 50.0f);
  CHECK(ms < 150.0f);
  REQUIRE(FK(cuEventElapsedTime)(&ms, start, stop) == CUDA_SUCCESS);
  CHECK(query("pid_busy_ns") == busy0 + 50000000);
  CHECK(query("pid_kernel_count") == kernels0 + 1);

  CUevent untimed = nullptr;
  REQUIRE(FK(cuEventCreate)(&untimed, CU_EVENT_DISABLE_TIMING) == CUDA_SUCCESS);
  CHECK(FK(cuEventQuery)(untimed) == CUDA_SUCCESS);  // never recorded: complete
  REQUIRE(FK(cuEventRecord)(untimed, s) == CUDA_SUCCESS);
  CHECK(FK(cuEventElapsedTime_v2)(&ms, start, untimed) == CUDA_ERROR_INVALID_HANDLE);

  CHECK(launch(s, 0) == CUDA_ERROR_INVALID_VALUE);
  CHECK(FK(cuLaunchKernel)(nullptr, 1, 1, 1, 1, 1, 1, 0, s, nullptr, nullptr) ==
        CUDA_ERROR_INVALID_HANDLE);
  REQUIRE(FK(cuEventDestroy_v2)(start) == CUDA_SUCCESS);
  REQUIRE(FK(cuEventDestroy_v2)(stop) == CUDA_SUCCESS);
  REQUIRE(FK(cuEventDestroy_v2)(untimed) == CUDA_SUCCESS);
  REQUIRE(FK(cuStreamDestroy_v2)(s) == CUDA_SUCCESS);
  CHECK(FK(cuStreamQuery)(s) == CUDA_ERROR_INVALID_HANDLE);
}

TEST_CASE("kernels from two threads run one after another on the device") {
  REQUIRE(FK(cuInit)(0) == CUDA_SUCCESS);
  const auto dev_busy0 = query("device_busy_ns");
  const uint64_t t0 = fk::now_ns();
  auto worker = [] {
    fk::PrimaryCtx ctx;
    CUstream s = nullptr;
    REQUIRE(FK(cuStreamCreate)(&s, CU_STREAM_NON_BLOCKING) == CUDA_SUCCESS);
    for (int i = 0; i < 10; ++i) REQUIRE(launch(s, 2000) == CUDA_SUCCESS);  // 10 x 2 ms
    REQUIRE(FK(cuStreamSynchronize)(s) == CUDA_SUCCESS);
    REQUIRE(FK(cuStreamDestroy_v2)(s) == CUDA_SUCCESS);
  };
  std::thread a(worker);
  std::thread b(worker);
  a.join();
  b.join();
  const uint64_t wall = fk::now_ns() - t0;
  CHECK(wall >= 40000000);  // 40 ms of kernels, serialised
  CHECK(query("device_busy_ns") == dev_busy0 + 40000000);
}

TEST_CASE("per-thread and legacy default streams and launch variants") {
  fk::PrimaryCtx ctx;
  const auto ptsz0 = FK(xpuFakeCallCount)("cuLaunchKernel_ptsz");
  const auto kernels0 = query("pid_kernel_count");
  // 0 through a _ptsz export is this thread's per-thread stream.
  REQUIRE(FK(cuLaunchKernel_ptsz)(fk::dummy_function(), 30000, 1, 1, 1, 1, 1, 0, nullptr, nullptr,
                                  nullptr) == CUDA_SUCCESS);
  CHECK(FK(cuStreamQuery_ptsz)(nullptr) == CUDA_ERROR_NOT_READY);
  REQUIRE(FK(cuStreamSynchronize)(CU_STREAM_PER_THREAD) == CUDA_SUCCESS);
  CHECK(FK(cuStreamQuery_ptsz)(nullptr) == CUDA_SUCCESS);
  CHECK(FK(xpuFakeCallCount)("cuLaunchKernel_ptsz") == ptsz0 + 1);

  // Legacy stream (0 through a legacy export).
  REQUIRE(launch(nullptr, 30000) == CUDA_SUCCESS);
  CHECK(FK(cuStreamQuery)(CU_STREAM_LEGACY) == CUDA_ERROR_NOT_READY);
  REQUIRE(FK(cuStreamSynchronize)(nullptr) == CUDA_SUCCESS);

  CUlaunchConfig cfg{};
  cfg.gridDimX = 1000;
  cfg.gridDimY = cfg.gridDimZ = cfg.blockDimX = cfg.blockDimY = cfg.blockDimZ = 1;
  cfg.hStream = nullptr;
  REQUIRE(FK(cuLaunchKernelEx)(&cfg, fk::dummy_function(), nullptr, nullptr) == CUDA_SUCCESS);
  REQUIRE(FK(cuLaunchKernelEx_ptsz)(&cfg, fk::dummy_function(), nullptr, nullptr) == CUDA_SUCCESS);
  REQUIRE(FK(cuLaunchCooperativeKernel)(fk::dummy_function(), 1000, 1, 1, 1, 1, 1, 0, nullptr,
                                        nullptr) == CUDA_SUCCESS);
  REQUIRE(FK(cuLaunchCooperativeKernel_ptsz)(fk::dummy_function(), 1000, 1, 1, 1, 1, 1, 0, nullptr,
                                             nullptr) == CUDA_SUCCESS);
  const uint64_t t0 = fk::now_ns();
  REQUIRE(FK(cuCtxSynchronize)() == CUDA_SUCCESS);
  CHECK(fk::now_ns() >= t0);
  CHECK(FK(cuStreamQuery_ptsz)(nullptr) == CUDA_SUCCESS);
  CHECK(query("pid_kernel_count") == kernels0 + 6);

  // Modules and libraries hand out launchable handles.
  CUmodule mod = nullptr;
  const char image[] = "fake cubin";
  REQUIRE(FK(cuModuleLoadData)(&mod, image) == CUDA_SUCCESS);
  CUfunction f = nullptr;
  REQUIRE(FK(cuModuleGetFunction)(&f, mod, "kern") == CUDA_SUCCESS);
  REQUIRE(FK(cuLaunchKernel)(f, 10, 1, 1, 1, 1, 1, 0, nullptr, nullptr, nullptr) == CUDA_SUCCESS);
  REQUIRE(FK(cuModuleUnload)(mod) == CUDA_SUCCESS);
  CUlibrary lib = nullptr;
  REQUIRE(FK(cuLibraryLoadData)(&lib, image, nullptr, nullptr, 0, nullptr, nullptr, 0) ==
          CUDA_SUCCESS);
  CUkernel k = nullptr;
  REQUIRE(FK(cuLibraryGetKernel)(&k, lib, "kern") == CUDA_SUCCESS);
  REQUIRE(FK(cuKernelGetFunction)(&f, k) == CUDA_SUCCESS);
  REQUIRE(FK(cuLaunchKernel)(f, 10, 1, 1, 1, 1, 1, 0, nullptr, nullptr, nullptr) == CUDA_SUCCESS);
  REQUIRE(FK(cuLibraryUnload)(lib) == CUDA_SUCCESS);
  REQUIRE(FK(cuCtxSynchronize)() == CUDA_SUCCESS);

  // No context: launches fail.
  std::thread([] { CHECK(launch(nullptr, 1) == CUDA_ERROR_INVALID_CONTEXT); }).join();
}

TEST_CASE("cuStreamWaitEvent orders a stream after another stream's work") {
  fk::PrimaryCtx ctx;
  CUstream a = nullptr;
  CUstream b = nullptr;
  REQUIRE(FK(cuStreamCreate)(&a, CU_STREAM_NON_BLOCKING) == CUDA_SUCCESS);
  REQUIRE(FK(cuStreamCreate)(&b, CU_STREAM_NON_BLOCKING) == CUDA_SUCCESS);
  CUevent e = nullptr;
  REQUIRE(FK(cuEventCreate)(&e, CU_EVENT_DISABLE_TIMING) == CUDA_SUCCESS);
  REQUIRE(launch(a, 30000) == CUDA_SUCCESS);
  REQUIRE(FK(cuEventRecord)(e, a) == CUDA_SUCCESS);
  REQUIRE(FK(cuStreamWaitEvent)(b, e, 0) == CUDA_SUCCESS);
  CHECK(FK(cuStreamQuery)(b) == CUDA_ERROR_NOT_READY);  // b now waits for a's kernel
  const uint64_t t0 = fk::now_ns();
  REQUIRE(FK(cuStreamSynchronize)(b) == CUDA_SUCCESS);
  CHECK(FK(cuStreamQuery)(a) == CUDA_SUCCESS);
  CHECK(fk::now_ns() - t0 < 100000000);
  REQUIRE(FK(cuEventDestroy_v2)(e) == CUDA_SUCCESS);
  REQUIRE(FK(cuStreamDestroy_v2)(a) == CUDA_SUCCESS);
  REQUIRE(FK(cuStreamDestroy_v2)(b) == CUDA_SUCCESS);
}
