// Helpers for the simulated driver's own tests: load the built fakes by path and call their
// exports through dlsym, the way real callers (cudart, XLA, CuPy) reach libcuda.
#pragma once

#include <cuda.h>
#include <dlfcn.h>
#include <time.h>

#include <cstdint>
#include <string>

#include "xpu_fake/fake_api.h"

namespace fk {

inline void* cuda() {
  static void* h = dlopen(XPU_FAKE_CUDA_PATH, RTLD_NOW | RTLD_LOCAL);
  return h;
}
inline void* nvml() {
  static void* h = dlopen(XPU_FAKE_NVML_PATH, RTLD_NOW | RTLD_LOCAL);
  return h;
}

template <typename F>
F sym(void* lib, const char* name) {
  return reinterpret_cast<F>(dlsym(lib, name));
}

inline uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace fk

// FK(cuMemAlloc_v2)(&p, n): the fake's export of exactly that name, typed from cuda.h (built with
// __CUDA_API_VERSION_INTERNAL, so every variant is declared under its own name).
#define FK(name)                                                                  \
  ([] {                                                                           \
    static const auto fk_fn_ = ::fk::sym<decltype(&::name)>(::fk::cuda(), #name); \
    return fk_fn_;                                                                \
  }())
#define NV(name)                                                                  \
  ([] {                                                                           \
    static const auto fk_fn_ = ::fk::sym<decltype(&::name)>(::fk::nvml(), #name); \
    return fk_fn_;                                                                \
  }())

namespace fk {

// xpuFakeQuery or a failed test; returns the value.
inline unsigned long long query(const char* what, int dev = 0) {
  unsigned long long v = 0;
  int rc = FK(xpuFakeQuery)(what, dev, &v);
  if (rc != 0) return ~0ull;
  return v;
}
inline unsigned long long query(const std::string& what, int dev = 0) {
  return query(what.c_str(), dev);
}

// cuInit + the primary context of dev made current for this thread (released on scope exit).
struct PrimaryCtx {
  CUdevice dev = 0;
  CUcontext ctx = nullptr;
  explicit PrimaryCtx(int d = 0) : dev(d) {
    FK(cuInit)(0);
    FK(cuDevicePrimaryCtxRetain)(&ctx, dev);
    FK(cuCtxSetCurrent)(ctx);
  }
  ~PrimaryCtx() {
    FK(cuCtxSetCurrent)(nullptr);
    FK(cuDevicePrimaryCtxRelease_v2)(dev);
  }
  PrimaryCtx(const PrimaryCtx&) = delete;
  PrimaryCtx& operator=(const PrimaryCtx&) = delete;
};

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kGiB = 1ull << 30;
// fake_env.cpp configures every test process like this.
constexpr uint64_t kTotal = 16 * kGiB;
constexpr uint64_t kCtxBytes = 256 * kMiB;

inline CUfunction dummy_function() {
  static int storage = 0;
  return reinterpret_cast<CUfunction>(&storage);
}

}  // namespace fk
