#include "driver/loader.hpp"

#include <dlfcn.h>

#include <atomic>
#include <initializer_list>

namespace xpu::shim {
namespace {

void* open_library(std::atomic<void*>& cache, const char* soname, bool only_if_loaded) noexcept {
  void* h = cache.load(std::memory_order_acquire);
  if (h != nullptr) return h;
  h = ::dlopen(soname, RTLD_NOW | RTLD_LOCAL | RTLD_NOLOAD);
  if (h == nullptr && !only_if_loaded) h = ::dlopen(soname, RTLD_NOW | RTLD_LOCAL);
  if (h != nullptr) {
    void* expected = nullptr;
    // Two threads may race here; dlopen refcounts, so the loser's extra reference is harmless.
    if (!cache.compare_exchange_strong(expected, h)) h = expected;
  }
  return h;
}

std::atomic<void*> g_cuda{nullptr};
std::atomic<void*> g_nvml{nullptr};

}  // namespace

DlsymFn real_dlsym() noexcept {
  static const DlsymFn fn = [] {
    // glibc >= 2.34 moved dlsym into libc (GLIBC_2.34); older x86-64 / aarch64 versions follow.
    for (const char* version : {"GLIBC_2.34", "GLIBC_2.2.5", "GLIBC_2.17"}) {
      if (void* p = ::dlvsym(RTLD_NEXT, "dlsym", version)) return reinterpret_cast<DlsymFn>(p);
    }
    return static_cast<DlsymFn>(nullptr);
  }();
  return fn;
}

void* cuda_library() noexcept { return open_library(g_cuda, "libcuda.so.1", false); }
void* nvml_library() noexcept { return open_library(g_nvml, "libnvidia-ml.so.1", false); }
void* cuda_library_if_loaded() noexcept { return open_library(g_cuda, "libcuda.so.1", true); }
void* nvml_library_if_loaded() noexcept { return open_library(g_nvml, "libnvidia-ml.so.1", true); }

}  // namespace xpu::shim
