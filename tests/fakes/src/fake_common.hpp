// Shared helpers of the simulated libcuda.so.1: the CUDA header (with every ABI variant
// declared), the per-export call counter, the exception guard of every extern "C" entry point,
// and time helpers.
#pragma once

// The build defines __CUDA_API_VERSION_INTERNAL (as NVIDIA's own driver build does): cuda.h then
// declares every exported variant under its real name (cuMemAlloc with 32-bit sizes, cuMemAlloc_v2,
// cuLaunchKernel and cuLaunchKernel_ptsz, ...) instead of #defining the old names to the new ones.
#include <cuda.h>

#include <cstddef>
#include <cstdint>
#include <ctime>

#include "fake_export_ids.h"

extern "C" {
// Defined in fake_exports.c (generated) and exports.cpp.
void xpu_fake_count_export(int id);
}

namespace xpu_fake {

// Every entry point runs through guard(): it counts the call under its export name and makes sure
// no C++ exception crosses the C ABI (a std::bad_alloc becomes CUDA_ERROR_OUT_OF_MEMORY).
template <typename F>
inline CUresult guard(int export_id, F&& body) noexcept {
  xpu_fake_count_export(export_id);
  try {
    return body();
  } catch (...) {
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
}

#define XPU_FAKE_API(name, ...) \
  return ::xpu_fake::guard(XPU_EXP_##name, [&]() -> CUresult { __VA_ARGS__ })

inline uint64_t now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// Sleeps until CLOCK_MONOTONIC reaches t (absolute, ns); returns at once if it already has.
void sleep_until_ns(uint64_t t);

constexpr uint64_t round_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

constexpr uint64_t kGranularity = 2ull << 20;  // VMM/array/pool granularity: 2 MiB
constexpr uint64_t kPitchAlign = 512;          // cuMemAllocPitch rounds the width to this
constexpr int kDriverVersion = 13000;

}  // namespace xpu_fake
