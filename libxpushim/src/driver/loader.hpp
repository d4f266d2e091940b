// Finding the real vendor libraries and the real dlsym.
//
// The shim never links libcuda or libnvidia-ml (a process without them must still start); it
// opens them at run time through the normal library search path, the same names the
// applications use, so a test puts a simulated driver first on LD_LIBRARY_PATH.
#pragma once

namespace xpu::shim {

using DlsymFn = void* (*)(void*, const char*);

// glibc's dlsym, found with dlvsym so that it can never resolve to our own override.
DlsymFn real_dlsym() noexcept;

// libcuda.so.1 / libnvidia-ml.so.1: opened on first need (nullptr when absent).
void* cuda_library() noexcept;
void* nvml_library() noexcept;
// The same, but only if the application already loaded it: the dlsym hook must not pull the
// driver into processes that never use CUDA (compilers, shells, JAX's ptxas children).
void* cuda_library_if_loaded() noexcept;
void* nvml_library_if_loaded() noexcept;

// After fork the child keeps the handles (the mappings are inherited); nothing to reset.

}  // namespace xpu::shim
