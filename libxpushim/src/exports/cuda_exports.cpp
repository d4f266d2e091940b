// Front door 1 of 3: the exported driver functions, for programs linked with -lcuda (and for any
// caller that reaches them through the global scope). One line per row of hooks/cuda.def: call
// the handler with the real function; if the handler itself faults, pass the call through.
#include "handlers/handlers.hpp"
#include "hook_table.hpp"

#define XPU_CUDA_HOOK(name, pfn, n, handler)                            \
  XPU_DEFINE_EXPORT(CudaHook, CUresult, CUDAAPI, name, pfn, n, handler) \
  static_assert(std::is_same_v<decltype(&::name), pfn>, #name ": type differs from " #pfn);
#include "../hooks/cuda.def"
#undef XPU_CUDA_HOOK
