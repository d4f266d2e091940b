#include "hook_table.hpp"

#include <mutex>

#include "driver/loader.hpp"
#include "xpu/common/log.hpp"

namespace xpu::shim {

std::atomic<void*> g_real_cuda[kCudaHookCount];
std::atomic<void*> g_real_nvml[kNvmlHookCount];

namespace {

constexpr std::string_view kCudaNames[] = {
#define XPU_CUDA_HOOK(name, pfn, n, handler) #name,
#include "../hooks/cuda.def"
#undef XPU_CUDA_HOOK
};
constexpr std::string_view kNvmlNames[] = {
#define XPU_NVML_HOOK(name, type, n, handler) #name,
#include "../hooks/nvml.def"
#undef XPU_NVML_HOOK
};

void* const kCudaHookAddresses[] = {
#define XPU_CUDA_HOOK(name, pfn, n, handler) reinterpret_cast<void*>(&::name),
#include "../hooks/cuda.def"
#undef XPU_CUDA_HOOK
};

}  // namespace
}  // namespace xpu::shim

// The NVML hooks are declared here (nvml_abi.h has no prototypes) and defined in nvml_exports.
extern "C" {
#define XPU_NVML_HOOK(name, type, n, handler) nvmlReturn_t name(XPU_PARAMS_##n(type));
#include "../hooks/nvml.def"
#undef XPU_NVML_HOOK
}

namespace xpu::shim {
namespace {

void* const kNvmlHookAddresses[] = {
#define XPU_NVML_HOOK(name, type, n, handler) reinterpret_cast<void*>(&::name),
#include "../hooks/nvml.def"
#undef XPU_NVML_HOOK
};

// Resolves every real function of one table at once, the first time any is needed.
template <std::size_t N>
void resolve_all(std::atomic<void*> (&table)[N], const std::string_view (&names)[N], void* library,
                 std::once_flag& once) {
  if (library == nullptr) return;
  std::call_once(once, [&] {
    const DlsymFn dlsym_fn = real_dlsym();
    for (std::size_t i = 0; i < N; ++i) {
      // Handle-scoped lookup: finds the library's own export even though ours shadows it globally.
      table[i].store(dlsym_fn(library, names[i].data()), std::memory_order_release);
    }
  });
}

std::once_flag g_cuda_once;
std::once_flag g_nvml_once;

template <std::size_t N>
void* substitute(std::atomic<void*> (&table)[N], void* const (&hooks)[N], void* p) {
  if (p == nullptr) return p;
  for (std::size_t i = 0; i < N; ++i) {
    if (table[i].load(std::memory_order_acquire) == p) return hooks[i];
  }
  return p;
}

}  // namespace

void* resolve_real(CudaHook id) noexcept {
  resolve_all(g_real_cuda, kCudaNames, cuda_library(), g_cuda_once);
  return g_real_cuda[static_cast<std::size_t>(id)].load(std::memory_order_acquire);
}

void* resolve_real(NvmlHook id) noexcept {
  resolve_all(g_real_nvml, kNvmlNames, nvml_library(), g_nvml_once);
  return g_real_nvml[static_cast<std::size_t>(id)].load(std::memory_order_acquire);
}

void* substitute_cuda(void* p) noexcept {
  resolve_all(g_real_cuda, kCudaNames, cuda_library_if_loaded(), g_cuda_once);
  return substitute(g_real_cuda, kCudaHookAddresses, p);
}

void* substitute_nvml(void* p) noexcept {
  resolve_all(g_real_nvml, kNvmlNames, nvml_library_if_loaded(), g_nvml_once);
  return substitute(g_real_nvml, kNvmlHookAddresses, p);
}

std::optional<CudaHook> cuda_hook_by_name(std::string_view name) noexcept {
  for (std::size_t i = 0; i < kCudaHookCount; ++i)
    if (kCudaNames[i] == name) return static_cast<CudaHook>(i);
  return std::nullopt;
}

std::optional<NvmlHook> nvml_hook_by_name(std::string_view name) noexcept {
  for (std::size_t i = 0; i < kNvmlHookCount; ++i)
    if (kNvmlNames[i] == name) return static_cast<NvmlHook>(i);
  return std::nullopt;
}

void* hook_address(CudaHook id) noexcept {
  return kCudaHookAddresses[static_cast<std::size_t>(id)];
}
void* hook_address(NvmlHook id) noexcept {
  return kNvmlHookAddresses[static_cast<std::size_t>(id)];
}
std::string_view hook_name(CudaHook id) noexcept {
  return kCudaNames[static_cast<std::size_t>(id)];
}

CUresult missing_real(CudaHook id) noexcept {
  static std::atomic<bool> once[kCudaHookCount];
  log_once(once[static_cast<std::size_t>(id)], LogLevel::warn,
           "{}: the driver (libcuda.so.1) does not provide it", hook_name(id));
  return CUDA_ERROR_NOT_SUPPORTED;
}

nvmlReturn_t missing_real(NvmlHook id) noexcept {
  static std::atomic<bool> once[kNvmlHookCount];
  log_once(once[static_cast<std::size_t>(id)], LogLevel::warn,
           "{}: libnvidia-ml.so.1 does not provide it", kNvmlNames[static_cast<std::size_t>(id)]);
  return NVML_ERROR_FUNCTION_NOT_FOUND;
}

void fail_open_notice(std::string_view hook) noexcept {
  static std::atomic<bool> once{false};
  log_once(once, LogLevel::error,
           "internal fault in the {} hook; passing calls through unchecked (further faults are "
           "not logged)",
           hook);
}

}  // namespace xpu::shim
