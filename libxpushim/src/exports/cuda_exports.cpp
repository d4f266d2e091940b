// Front door 1 of 3: the exported driver functions, for programs linked with -lcuda (and for any
// caller that reaches them through the global scope). One line per row of hooks/cuda.def: call
// the handler with the real function; if the handler itself faults, pass the call through.
#include "handlers/handlers.hpp"
#include "hook_table.hpp"

#define XPU_CUDA_HOOK(name, pfn, n, handler)                                                  \
  static_assert(::xpu::shim::signature<pfn>::arity == n, #name ": arity differs from " #pfn); \
  extern "C" XPU_EXPORT CUresult CUDAAPI name(XPU_PARAMS_##n(pfn)) {                          \
    const auto real = ::xpu::shim::real<::xpu::shim::CudaHook::name, pfn>();                  \
    if (real == nullptr) return ::xpu::shim::missing_real(::xpu::shim::CudaHook::name);       \
    try {                                                                                     \
      using namespace ::xpu::shim;                                                            \
      return handler(real, XPU_ARGS_##n);                                                     \
    } catch (...) {                                                                           \
      ::xpu::shim::fail_open_notice(#name);                                                   \
      return real(XPU_ARGS_##n);                                                              \
    }                                                                                         \
  }                                                                                           \
  static_assert(std::is_same_v<decltype(&::name), pfn>, #name ": type differs from " #pfn);
#include "../hooks/cuda.def"
#undef XPU_CUDA_HOOK
