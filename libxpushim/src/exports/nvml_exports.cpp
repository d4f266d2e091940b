// The exported NVML functions, one line per row of hooks/nvml.def (see cuda_exports.cpp).
#include "handlers/handlers.hpp"
#include "hook_table.hpp"

#define XPU_NVML_HOOK(name, type, n, handler)                                                   \
  static_assert(::xpu::shim::signature<type>::arity == n, #name ": arity differs from " #type); \
  extern "C" XPU_EXPORT nvmlReturn_t name(XPU_PARAMS_##n(type)) {                               \
    const auto real = ::xpu::shim::real<::xpu::shim::NvmlHook::name, type>();                   \
    if (real == nullptr) return ::xpu::shim::missing_real(::xpu::shim::NvmlHook::name);         \
    try {                                                                                       \
      using namespace ::xpu::shim;                                                              \
      return handler(real, XPU_ARGS_##n);                                                       \
    } catch (...) {                                                                             \
      ::xpu::shim::fail_open_notice(#name);                                                     \
      return real(XPU_ARGS_##n);                                                                \
    }                                                                                           \
  }
#include "../hooks/nvml.def"
#undef XPU_NVML_HOOK
