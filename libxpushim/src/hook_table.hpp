// Everything generated from hooks/cuda.def and hooks/nvml.def: hook ids, exported names, the
// address of each hook and of the real function it wraps. See hooks/cuda.def for the scheme.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <tuple>

#include "cuda_api.hpp"
#include "xpu/vendor/nvml_abi.h"

namespace xpu::shim {

enum class CudaHook : std::uint16_t {
#define XPU_CUDA_HOOK(name, pfn, arity, handler) name,
#include "../hooks/cuda.def"
#undef XPU_CUDA_HOOK
  count
};

enum class NvmlHook : std::uint16_t {
#define XPU_NVML_HOOK(name, type, arity, handler) name,
#include "../hooks/nvml.def"
#undef XPU_NVML_HOOK
  count
};

inline constexpr std::size_t kCudaHookCount = static_cast<std::size_t>(CudaHook::count);
inline constexpr std::size_t kNvmlHookCount = static_cast<std::size_t>(NvmlHook::count);

// Parameter types of a function-pointer type, so that an export can be declared from its PFN.
template <class F>
struct signature;
template <class R, class... A>
struct signature<R (*)(A...)> {
  using result = R;
  static constexpr std::size_t arity = sizeof...(A);
  template <std::size_t I>
  using arg = std::tuple_element_t<I, std::tuple<A...>>;
};
template <class F, std::size_t I>
using arg_t = typename signature<F>::template arg<I>;

// Real functions, resolved from the vendor libraries the first time they are needed.
// An entry stays null when the installed driver lacks that export.
extern std::atomic<void*> g_real_cuda[kCudaHookCount];
extern std::atomic<void*> g_real_nvml[kNvmlHookCount];
void* resolve_real(CudaHook id) noexcept;
void* resolve_real(NvmlHook id) noexcept;

template <CudaHook Id, class Pfn>
inline Pfn real() noexcept {
  void* p = g_real_cuda[static_cast<std::size_t>(Id)].load(std::memory_order_acquire);
  if (p == nullptr) [[unlikely]]
    p = resolve_real(Id);
  return reinterpret_cast<Pfn>(p);
}
template <NvmlHook Id, class Fn>
inline Fn real() noexcept {
  void* p = g_real_nvml[static_cast<std::size_t>(Id)].load(std::memory_order_acquire);
  if (p == nullptr) [[unlikely]]
    p = resolve_real(Id);
  return reinterpret_cast<Fn>(p);
}

// Resolve-then-substitute: given a pointer the driver (or dlsym) handed out, the matching hook
// if that pointer is the real function of a hooked export, otherwise the pointer unchanged.
void* substitute_cuda(void* real_function) noexcept;
void* substitute_nvml(void* real_function) noexcept;

// Name lookups for the dlsym redirect: the hook for an exported name, or nullptr.
std::optional<CudaHook> cuda_hook_by_name(std::string_view name) noexcept;
std::optional<NvmlHook> nvml_hook_by_name(std::string_view name) noexcept;
void* hook_address(CudaHook id) noexcept;
void* hook_address(NvmlHook id) noexcept;
std::string_view hook_name(CudaHook id) noexcept;

// Logs once per hook that its real function is missing, and returns the error to give.
CUresult missing_real(CudaHook id) noexcept;
nvmlReturn_t missing_real(NvmlHook id) noexcept;
void fail_open_notice(std::string_view hook) noexcept;

}  // namespace xpu::shim

// Declaration helpers for the exports: XPU_PARAMS_3(pfn) -> "arg_t<pfn,0> a0, arg_t<pfn,1> a1,
// arg_t<pfn,2> a2" and XPU_ARGS_3 -> "a0, a1, a2".
#define XPU_P(pfn, i) ::xpu::shim::arg_t<pfn, i> a##i
#define XPU_PARAMS_1(f) XPU_P(f, 0)
#define XPU_PARAMS_2(f) XPU_PARAMS_1(f), XPU_P(f, 1)
#define XPU_PARAMS_3(f) XPU_PARAMS_2(f), XPU_P(f, 2)
#define XPU_PARAMS_4(f) XPU_PARAMS_3(f), XPU_P(f, 3)
#define XPU_PARAMS_5(f) XPU_PARAMS_4(f), XPU_P(f, 4)
#define XPU_PARAMS_6(f) XPU_PARAMS_5(f), XPU_P(f, 5)
#define XPU_PARAMS_7(f) XPU_PARAMS_6(f), XPU_P(f, 6)
#define XPU_PARAMS_8(f) XPU_PARAMS_7(f), XPU_P(f, 7)
#define XPU_PARAMS_9(f) XPU_PARAMS_8(f), XPU_P(f, 8)
#define XPU_PARAMS_10(f) XPU_PARAMS_9(f), XPU_P(f, 9)
#define XPU_PARAMS_11(f) XPU_PARAMS_10(f), XPU_P(f, 10)
#define XPU_ARGS_1 a0
#define XPU_ARGS_2 XPU_ARGS_1, a1
#define XPU_ARGS_3 XPU_ARGS_2, a2
#define XPU_ARGS_4 XPU_ARGS_3, a3
#define XPU_ARGS_5 XPU_ARGS_4, a4
#define XPU_ARGS_6 XPU_ARGS_5, a5
#define XPU_ARGS_7 XPU_ARGS_6, a6
#define XPU_ARGS_8 XPU_ARGS_7, a7
#define XPU_ARGS_9 XPU_ARGS_8, a8
#define XPU_ARGS_10 XPU_ARGS_9, a9
#define XPU_ARGS_11 XPU_ARGS_10, a10
#define XPU_EXPORT __attribute__((visibility("default")))

// An exported hook: RET CALLCONV name(params) calling `handler` with the real function (row `name`
// of TABLE, typed `type`); if the handler itself faults, the call passes through. One use per row
// of hooks/cuda.def (cuda_exports.cpp) and hooks/nvml.def (nvml_exports.cpp).
#define XPU_DEFINE_EXPORT(TABLE, RET, CALLCONV, name, type, n, handler)                         \
  static_assert(::xpu::shim::signature<type>::arity == n, #name ": arity differs from " #type); \
  extern "C" XPU_EXPORT RET CALLCONV name(XPU_PARAMS_##n(type)) {                               \
    const auto real = ::xpu::shim::real<::xpu::shim::TABLE::name, type>();                      \
    if (real == nullptr) return ::xpu::shim::missing_real(::xpu::shim::TABLE::name);            \
    try {                                                                                       \
      using namespace ::xpu::shim;                                                              \
      return handler(real, XPU_ARGS_##n);                                                       \
    } catch (...) {                                                                             \
      ::xpu::shim::fail_open_notice(#name);                                                     \
      return real(XPU_ARGS_##n);                                                                \
    }                                                                                           \
  }
