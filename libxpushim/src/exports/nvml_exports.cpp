// The exported NVML functions, one line per row of hooks/nvml.def (see cuda_exports.cpp).
#include "handlers/handlers.hpp"
#include "hook_table.hpp"

#define XPU_NVML_HOOK(name, type, n, handler) \
  XPU_DEFINE_EXPORT(NvmlHook, nvmlReturn_t, , name, type, n, handler)
#include "../hooks/nvml.def"
#undef XPU_NVML_HOOK
