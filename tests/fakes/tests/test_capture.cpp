// Stream capture and graphs: captured work does not run, graph launches do; the measured
// invalidation rules (research §3.4); graph memory.
#include <cuda.h>

#include <thread>

#include "fake_loader.hpp"
#include "xpu_catch.hpp"

using fk::kMiB;
using fk::query;

namespace {

CUresult launch(CUstream s, unsigned blocks) {
  return FK(cuLaunchKernel)(fk::dummy_function(), blocks, 1, 1, 1, 1, 1, 0, s, nullptr, nullptr);
}

CUstreamCaptureStatus status_of(CUstream s) {
  CUstreamCaptureStatus st = CU_STREAM_CAPTURE_STATUS_NONE;
  REQUIRE(FK(cuStreamIsCapturing)(s, &st) == CUDA_SUCCESS);
  return st;
}

// Runs f on another thread with the fake's primary context current there.
template <typename F>
void on_other_thread(F f) {
  std::thread([&] {
    fk::PrimaryCtx ctx;
    f();
  }).join();
}

}  // namespace

TEST_CASE("captured work becomes a graph whose launch runs it and reserves its memory") {
  fk::PrimaryCtx ctx;
  CUstream s = nullptr;
  REQUIRE(FK(cuStreamCreate)(&s, CU_STREAM_NON_BLOCKING) == CUDA_SUCCESS);
  const auto kernels0 = query("pid_kernel_count");
  const auto used0 = query("used_bytes");

  REQUIRE(FK(cuStreamBeginCapture_v2)(s, CU_STREAM_CAPTURE_MODE_GLOBAL) == CUDA_SUCCESS);
  CHECK(status_of(s) == CU_STREAM_CAPTURE_STATUS_ACTIVE);
  CUstreamCaptureStatus st{};
  cuuint64_t id = 0;
  CUgraph g_during = nullptr;
  const CUgraphNode* deps = nullptr;
  const CUgraphEdgeData* edges = nullptr;
  size_t ndeps = 99;
  REQUIRE(FK(cuStreamGetCaptureInfo_v3)(s, &st, &id, &g_during, &deps, &edges, &ndeps) ==
          CUDA_SUCCESS);
  CHECK(st == CU_STREAM_CAPTURE_STATUS_ACTIVE);
  CHECK(id != 0);
  CHECK(g_during != nullptr);
  REQUIRE(launch(s, 5000) == CUDA_SUCCESS);
  REQUIRE(launch(s, 3000) == CUDA_SUCCESS);
  CUdeviceptr p = 0;
  REQUIRE(FK(cuMemAllocAsync)(&p, 8 * kMiB, s) == CUDA_SUCCESS);
  CHECK(p != 0);
  CHECK(query("pid_kernel_count") == kernels0);                          // nothing ran
  CHECK(query("used_bytes") == used0);                                   // no memory yet
  CHECK(FK(cuStreamQuery)(s) == CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);  // invalidates...
  CUgraph g = reinterpret_cast<CUgraph>(0x1);
  CHECK(FK(cuStreamEndCapture)(s, &g) == CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
  CHECK(g == nullptr);
  CHECK(status_of(s) == CU_STREAM_CAPTURE_STATUS_NONE);

  // Again, cleanly.
  REQUIRE(FK(cuStreamBeginCapture_v2)(s, CU_STREAM_CAPTURE_MODE_GLOBAL) == CUDA_SUCCESS);
  REQUIRE(launch(s, 5000) == CUDA_SUCCESS);
  REQUIRE(launch(s, 3000) == CUDA_SUCCESS);
  REQUIRE(FK(cuMemAllocAsync)(&p, 8 * kMiB, s) == CUDA_SUCCESS);
  REQUIRE(FK(cuStreamEndCapture)(s, &g) == CUDA_SUCCESS);
  REQUIRE(g != nullptr);
  size_t nodes = 0;
  REQUIRE(FK(cuGraphGetNodes)(g, nullptr, &nodes) == CUDA_SUCCESS);
  CHECK(nodes == 3);
  CUgraphExec exec = nullptr;
  REQUIRE(FK(cuGraphInstantiateWithFlags)(&exec, g, 0) == CUDA_SUCCESS);
  cuuint64_t v = 1;
  REQUIRE(FK(cuDeviceGetGraphMemAttribute)(0, CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT, &v) ==
          CUDA_SUCCESS);
  CHECK(v == 0);  // not before the first launch/upload

  const auto busy0 = query("pid_busy_ns");
  REQUIRE(FK(cuGraphLaunch)(exec, s) == CUDA_SUCCESS);
  REQUIRE(FK(cuStreamSynchronize)(s) == CUDA_SUCCESS);
  CHECK(query("pid_kernel_count") == kernels0 + 2);
  CHECK(query("pid_busy_ns") == busy0 + 8000000);
  REQUIRE(FK(cuDeviceGetGraphMemAttribute)(0, CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT, &v) ==
          CUDA_SUCCESS);
  CHECK(v == 8 * kMiB);
  REQUIRE(FK(cuDeviceGetGraphMemAttribute)(0, CU_GRAPH_MEM_ATTR_USED_MEM_CURRENT, &v) ==
          CUDA_SUCCESS);
  CHECK(v == 8 * kMiB);
  CHECK(query("used_bytes") == used0 + 8 * kMiB);
  CHECK(query("graph_mem_reserved") == 8 * kMiB);
  REQUIRE(FK(cuGraphLaunch)(exec, s) == CUDA_SUCCESS);  // relaunch: no new memory
  CHECK(query("used_bytes") == used0 + 8 * kMiB);

  REQUIRE(FK(cuGraphExecDestroy)(exec) == CUDA_SUCCESS);
  REQUIRE(FK(cuDeviceGetGraphMemAttribute)(0, CU_GRAPH_MEM_ATTR_USED_MEM_CURRENT, &v) ==
          CUDA_SUCCESS);
  CHECK(v == 0);
  CHECK(query("used_bytes") == used0 + 8 * kMiB);  // reserved until trimmed
  REQUIRE(FK(cuDeviceGraphMemTrim)(0) == CUDA_SUCCESS);
  CHECK(query("used_bytes") == used0);

  // cuGraphUpload reserves too.
  REQUIRE(FK(cuGraphInstantiateWithFlags)(&exec, g, 0) == CUDA_SUCCESS);
  REQUIRE(FK(cuGraphUpload)(exec, s) == CUDA_SUCCESS);
  CHECK(query("used_bytes") == used0 + 8 * kMiB);
  REQUIRE(FK(cuGraphExecDestroy)(exec) == CUDA_SUCCESS);
  REQUIRE(FK(cuDeviceGraphMemTrim)(0) == CUDA_SUCCESS);
  CHECK(query("used_bytes") == used0);
  REQUIRE(FK(cuGraphDestroy)(g) == CUDA_SUCCESS);
  REQUIRE(FK(cuStreamSynchronize)(s) == CUDA_SUCCESS);
  REQUIRE(FK(cuStreamDestroy_v2)(s) == CUDA_SUCCESS);
}

TEST_CASE("another thread's unsafe call invalidates a GLOBAL capture unless it is RELAXED") {
  fk::PrimaryCtx ctx;
  CUstream s = nullptr;
  REQUIRE(FK(cuStreamCreate)(&s, 0) == CUDA_SUCCESS);
  CUevent unrelated = nullptr;
  REQUIRE(FK(cuEventCreate)(&unrelated, 0) == CUDA_SUCCESS);
  REQUIRE(FK(cuEventRecord)(unrelated, s) == CUDA_SUCCESS);
  CUgraph g = nullptr;

  SECTION("default mode in the other thread: 900, capture invalidated") {
    REQUIRE(FK(cuStreamBeginCapture_v2)(s, CU_STREAM_CAPTURE_MODE_GLOBAL) == CUDA_SUCCESS);
    on_other_thread([&] {
      CHECK(FK(cuEventQuery)(unrelated) == CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
      size_t f = 0;
      size_t t = 0;
      CHECK(FK(cuMemGetInfo_v2)(&f, &t) == CUDA_SUCCESS);  // harmless calls stay allowed
    });
    CHECK(status_of(s) == CU_STREAM_CAPTURE_STATUS_INVALIDATED);
    CHECK(launch(s, 1) == CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
    CHECK(FK(cuStreamEndCapture)(s, &g) == CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
    CHECK(g == nullptr);
  }
  SECTION("cuMemAlloc and cuStreamSynchronize from another thread also count") {
    REQUIRE(FK(cuStreamBeginCapture_v2)(s, CU_STREAM_CAPTURE_MODE_GLOBAL) == CUDA_SUCCESS);
    on_other_thread([&] {
      CUdeviceptr p = 0;
      CHECK(FK(cuMemAlloc_v2)(&p, 1) == CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
    });
    CHECK(FK(cuStreamEndCapture)(s, &g) == CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
    REQUIRE(FK(cuStreamBeginCapture_v2)(s, CU_STREAM_CAPTURE_MODE_GLOBAL) == CUDA_SUCCESS);
    on_other_thread([&] {
      CHECK(FK(cuStreamSynchronize)(CU_STREAM_PER_THREAD) == CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
    });
    CHECK(FK(cuStreamEndCapture)(s, &g) == CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
  }
  SECTION("RELAXED in the other thread: allowed, capture stays ACTIVE") {
    REQUIRE(FK(cuStreamBeginCapture_v2)(s, CU_STREAM_CAPTURE_MODE_GLOBAL) == CUDA_SUCCESS);
    on_other_thread([&] {
      CUstreamCaptureMode m = CU_STREAM_CAPTURE_MODE_RELAXED;
      REQUIRE(FK(cuThreadExchangeStreamCaptureMode)(&m) == CUDA_SUCCESS);
      CHECK(m == CU_STREAM_CAPTURE_MODE_GLOBAL);
      CHECK(FK(cuEventQuery)(unrelated) == CUDA_SUCCESS);
      CHECK(FK(cuEventSynchronize)(unrelated) == CUDA_SUCCESS);
      CUdeviceptr p = 0;
      REQUIRE(FK(cuMemAlloc_v2)(&p, 1) == CUDA_SUCCESS);
      REQUIRE(FK(cuMemFree_v2)(p) == CUDA_SUCCESS);
      // ... but never cuCtxSynchronize (measured: 900 and invalidation even in RELAXED).
    });
    CHECK(status_of(s) == CU_STREAM_CAPTURE_STATUS_ACTIVE);
    REQUIRE(FK(cuStreamEndCapture)(s, &g) == CUDA_SUCCESS);
    REQUIRE(FK(cuGraphDestroy)(g) == CUDA_SUCCESS);
  }
  SECTION("THREAD_LOCAL capture: other threads are free, the capturing thread is not") {
    REQUIRE(FK(cuStreamBeginCapture_v2)(s, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL) == CUDA_SUCCESS);
    on_other_thread([&] { CHECK(FK(cuEventQuery)(unrelated) == CUDA_SUCCESS); });
    CHECK(status_of(s) == CU_STREAM_CAPTURE_STATUS_ACTIVE);
    CUdeviceptr p = 0;
    CHECK(FK(cuMemAlloc_v2)(&p, 1) == CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
    CHECK(FK(cuStreamEndCapture)(s, &g) == CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
  }
  SECTION("cuCtxSynchronize fails and invalidates even in RELAXED mode") {
    REQUIRE(FK(cuStreamBeginCapture_v2)(s, CU_STREAM_CAPTURE_MODE_RELAXED) == CUDA_SUCCESS);
    CUstreamCaptureMode m = CU_STREAM_CAPTURE_MODE_RELAXED;
    REQUIRE(FK(cuThreadExchangeStreamCaptureMode)(&m) == CUDA_SUCCESS);
    CHECK(FK(cuCtxSynchronize)() == CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
    REQUIRE(FK(cuThreadExchangeStreamCaptureMode)(&m) == CUDA_SUCCESS);
    CHECK(FK(cuStreamEndCapture)(s, &g) == CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
  }
  SECTION("an event recorded in the capture: 907, then INVALID_VALUE until re-recorded") {
    CUevent ev = nullptr;
    REQUIRE(FK(cuEventCreate)(&ev, 0) == CUDA_SUCCESS);
    REQUIRE(FK(cuStreamBeginCapture_v2)(s, CU_STREAM_CAPTURE_MODE_RELAXED) == CUDA_SUCCESS);
    REQUIRE(FK(cuEventRecord)(ev, s) == CUDA_SUCCESS);
    CHECK(FK(cuEventQuery)(ev) == CUDA_ERROR_CAPTURED_EVENT);
    CHECK(FK(cuStreamEndCapture)(s, &g) == CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
    CHECK(FK(cuEventQuery)(ev) == CUDA_ERROR_INVALID_VALUE);
    REQUIRE(FK(cuEventRecord)(ev, s) == CUDA_SUCCESS);
    CHECK(FK(cuEventSynchronize)(ev) == CUDA_SUCCESS);
    REQUIRE(FK(cuEventDestroy_v2)(ev) == CUDA_SUCCESS);
  }
  SECTION("the legacy stream and a capturing blocking stream") {
    CHECK(FK(cuStreamBeginCapture_v2)(CU_STREAM_LEGACY, CU_STREAM_CAPTURE_MODE_GLOBAL) ==
          CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED);
    REQUIRE(FK(cuStreamBeginCapture_v2)(s, CU_STREAM_CAPTURE_MODE_GLOBAL) == CUDA_SUCCESS);
    CUstreamCaptureStatus st{};
    CHECK(FK(cuStreamIsCapturing)(nullptr, &st) == CUDA_ERROR_STREAM_CAPTURE_IMPLICIT);
    CHECK(status_of(s) == CU_STREAM_CAPTURE_STATUS_ACTIVE);  // that query is harmless
    CUevent ev = nullptr;
    REQUIRE(FK(cuEventCreate)(&ev, 0) == CUDA_SUCCESS);
    CHECK(FK(cuEventRecord)(ev, CU_STREAM_PER_THREAD) == CUDA_SUCCESS);
    CHECK(FK(cuEventRecord)(ev, CU_STREAM_LEGACY) == CUDA_ERROR_STREAM_CAPTURE_IMPLICIT);
    CHECK(FK(cuStreamEndCapture)(s, &g) == CUDA_ERROR_STREAM_CAPTURE_INVALIDATED);
    REQUIRE(FK(cuEventDestroy_v2)(ev) == CUDA_SUCCESS);
  }
  SECTION("ending a GLOBAL capture from another thread: 908") {
    REQUIRE(FK(cuStreamBeginCapture_v2)(s, CU_STREAM_CAPTURE_MODE_GLOBAL) == CUDA_SUCCESS);
    on_other_thread([&] {
      CUgraph other = nullptr;
      CHECK(FK(cuStreamEndCapture)(s, &other) == CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD);
    });
    REQUIRE(FK(cuStreamEndCapture)(s, &g) == CUDA_SUCCESS);
    REQUIRE(FK(cuGraphDestroy)(g) == CUDA_SUCCESS);
  }
  SECTION("capture on the per-thread stream through _ptsz exports") {
    REQUIRE(FK(cuStreamBeginCapture_v2_ptsz)(nullptr, CU_STREAM_CAPTURE_MODE_GLOBAL) ==
            CUDA_SUCCESS);
    CUstreamCaptureStatus st{};
    cuuint64_t id = 0;
    REQUIRE(FK(cuStreamGetCaptureInfo_v3_ptsz)(nullptr, &st, &id, nullptr, nullptr, nullptr,
                                               nullptr) == CUDA_SUCCESS);
    CHECK(st == CU_STREAM_CAPTURE_STATUS_ACTIVE);
    REQUIRE(FK(cuStreamIsCapturing_ptsz)(nullptr, &st) == CUDA_SUCCESS);
    CHECK(st == CU_STREAM_CAPTURE_STATUS_ACTIVE);
    REQUIRE(FK(cuLaunchKernel_ptsz)(fk::dummy_function(), 10, 1, 1, 1, 1, 1, 0, nullptr, nullptr,
                                    nullptr) == CUDA_SUCCESS);
    REQUIRE(FK(cuStreamEndCapture_ptsz)(nullptr, &g) == CUDA_SUCCESS);
    size_t n = 0;
    REQUIRE(FK(cuGraphGetNodes)(g, nullptr, &n) == CUDA_SUCCESS);
    CHECK(n == 1);
    REQUIRE(FK(cuGraphDestroy)(g) == CUDA_SUCCESS);
  }
  REQUIRE(FK(cuEventDestroy_v2)(unrelated) == CUDA_SUCCESS);
  REQUIRE(FK(cuStreamDestroy_v2)(s) == CUDA_SUCCESS);
}

TEST_CASE("graphs built with node APIs and the instantiate variants") {
  fk::PrimaryCtx ctx;
  CUgraph g = nullptr;
  REQUIRE(FK(cuGraphCreate)(&g, 0) == CUDA_SUCCESS);
  CUDA_KERNEL_NODE_PARAMS kp{};
  kp.func = fk::dummy_function();
  kp.gridDimX = 2000;
  kp.gridDimY = kp.gridDimZ = kp.blockDimX = kp.blockDimY = kp.blockDimZ = 1;
  CUgraphNode n = nullptr;
  REQUIRE(FK(cuGraphAddKernelNode_v2)(&n, g, nullptr, 0, &kp) == CUDA_SUCCESS);
  CUDA_MEM_ALLOC_NODE_PARAMS mp{};
  mp.poolProps.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
  mp.poolProps.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  mp.poolProps.location.id = 0;
  mp.bytesize = 4 * kMiB;
  REQUIRE(FK(cuGraphAddMemAllocNode)(&n, g, nullptr, 0, &mp) == CUDA_SUCCESS);
  CHECK(mp.dptr != 0);
  REQUIRE(FK(cuGraphAddMemFreeNode)(&n, g, nullptr, 0, mp.dptr) == CUDA_SUCCESS);

  const auto used0 = query("used_bytes");
  CUDA_GRAPH_INSTANTIATE_PARAMS ip{};
  ip.flags = CUDA_GRAPH_INSTANTIATE_FLAG_UPLOAD;
  ip.hUploadStream = nullptr;
  CUgraphExec e = nullptr;
  REQUIRE(FK(cuGraphInstantiateWithParams)(&e, g, &ip) == CUDA_SUCCESS);
  CHECK(ip.result_out == CUDA_GRAPH_INSTANTIATE_SUCCESS);
  CHECK(query("used_bytes") == used0 + 4 * kMiB);
  const auto busy0 = query("pid_busy_ns");
  REQUIRE(FK(cuGraphLaunch_ptsz)(e, nullptr) == CUDA_SUCCESS);
  REQUIRE(FK(cuStreamSynchronize_ptsz)(nullptr) == CUDA_SUCCESS);
  CHECK(query("pid_busy_ns") == busy0 + 2000000);
  CUgraphExec e2 = nullptr;
  REQUIRE(FK(cuGraphInstantiate_v2)(&e2, g, nullptr, nullptr, 0) == CUDA_SUCCESS);
  REQUIRE(FK(cuGraphExecDestroy)(e2) == CUDA_SUCCESS);
  REQUIRE(FK(cuGraphExecDestroy)(e) == CUDA_SUCCESS);
  REQUIRE(FK(cuDeviceGraphMemTrim)(0) == CUDA_SUCCESS);
  CHECK(query("used_bytes") == used0);
  REQUIRE(FK(cuGraphDestroy)(g) == CUDA_SUCCESS);
}
