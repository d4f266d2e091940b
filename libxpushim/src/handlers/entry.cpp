// Front door 3 of 3 (cuGetProcAddress) and cuInit, where the settings take effect.
#include "handlers/handlers.hpp"
#include "hook_table.hpp"
#include "runtime/runtime.hpp"

namespace xpu::shim::handlers {

// cudart (every copy of it: PyTorch, cuBLAS, NCCL, CuPy, nvcc programs) asks the driver for each
// entry point by base name, version and flags. We ask the real driver exactly the same question
// and swap the answer only when it is the real function of a hooked export: the driver's
// version/flag rules, return codes and status stay the driver's own.
CUresult get_proc_address(PFN_cuGetProcAddress_v11030 real, const char* symbol, void** pfn,
                          int version, cuuint64_t flags) {
  const CUresult rc = real(symbol, pfn, version, flags);
  if (rc == CUDA_SUCCESS && pfn != nullptr) *pfn = substitute_cuda(*pfn);
  return rc;
}

CUresult get_proc_address(PFN_cuGetProcAddress_v12000 real, const char* symbol, void** pfn,
                          int version, cuuint64_t flags, CUdriverProcAddressQueryResult* status) {
  const CUresult rc = real(symbol, pfn, version, flags, status);
  if (rc == CUDA_SUCCESS && pfn != nullptr) *pfn = substitute_cuda(*pfn);
  return rc;
}

CUresult init(PFN_cuInit_v2000 real, unsigned int flags) {
  const CUresult rc = real(flags);
  if (rc != CUDA_SUCCESS) return rc;
  // A bad configuration fails CUDA initialisation itself (fail closed), with the message
  // already printed; it never turns into running without limits.
  return Runtime::get().ensure_initialised() == Mode::misconfigured ? Runtime::kConfigError : rc;
}

}  // namespace xpu::shim::handlers
