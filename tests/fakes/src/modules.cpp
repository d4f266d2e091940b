// Modules, libraries, kernels and functions: opaque handles with no code behind them. Any image
// is accepted; any function name resolves. Kernels launched through these handles run for the
// duration the launch's grid gives them (see streams_events.cpp).
#include <algorithm>

#include "exports.hpp"
#include "process.hpp"

namespace xpu_fake {
namespace {

CUresult load_module(CUmodule* module, const void* image) {
  if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
  if (module == nullptr || image == nullptr) return CUDA_ERROR_INVALID_VALUE;
  ProcLock lk;
  CUctx_st* c = nullptr;
  if (CUresult r = require_ctx_locked(&c); r != CUDA_SUCCESS) return r;
  auto* m = new CUmod_st;
  proc().modules.insert(m);
  *module = m;
  return CUDA_SUCCESS;
}

}  // namespace
}  // namespace xpu_fake

using namespace xpu_fake;

extern "C" {

XPU_FAKE_EXPORT CUresult cuModuleLoadData(CUmodule* module, const void* image) {
  XPU_FAKE_API(cuModuleLoadData, return load_module(module, image););
}
XPU_FAKE_EXPORT CUresult cuModuleLoadDataEx(CUmodule* module, const void* image,
                                            unsigned int numOptions, CUjit_option* options,
                                            void** optionValues) {
  XPU_FAKE_API(cuModuleLoadDataEx, {
    (void)numOptions;
    (void)options;
    (void)optionValues;
    return load_module(module, image);
  });
}
XPU_FAKE_EXPORT CUresult cuModuleLoadFatBinary(CUmodule* module, const void* fatCubin) {
  XPU_FAKE_API(cuModuleLoadFatBinary, return load_module(module, fatCubin););
}
XPU_FAKE_EXPORT CUresult cuModuleLoad(CUmodule* module, const char* fname) {
  XPU_FAKE_API(cuModuleLoad, return load_module(module, fname););
}

XPU_FAKE_EXPORT CUresult cuModuleUnload(CUmodule hmod) {
  XPU_FAKE_API(cuModuleUnload, {
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    ProcLock lk;
    if (hmod == nullptr || proc().modules.erase(hmod) == 0) return CUDA_ERROR_INVALID_HANDLE;
    delete hmod;
    return CUDA_SUCCESS;
  });
}

XPU_FAKE_EXPORT CUresult cuModuleGetFunction(CUfunction* hfunc, CUmodule hmod, const char* name) {
  XPU_FAKE_API(cuModuleGetFunction, {
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    if (hfunc == nullptr || name == nullptr) return CUDA_ERROR_INVALID_VALUE;
    ProcLock lk;
    if (hmod == nullptr || proc().modules.count(hmod) == 0) return CUDA_ERROR_INVALID_HANDLE;
    auto& fs = hmod->functions;
    auto it = std::find_if(fs.begin(), fs.end(), [&](const auto& f) { return f->name == name; });
    if (it == fs.end()) {
      fs.push_back(std::make_unique<CUfunc_st>(CUfunc_st{name}));
      it = std::prev(fs.end());
    }
    *hfunc = it->get();
    return CUDA_SUCCESS;
  });
}

XPU_FAKE_EXPORT CUresult cuLibraryLoadData(CUlibrary* library, const void* code,
                                           CUjit_option* jitOptions, void** jitOptionsValues,
                                           unsigned int numJitOptions,
                                           CUlibraryOption* libraryOptions,
                                           void** libraryOptionValues,
                                           unsigned int numLibraryOptions) {
  XPU_FAKE_API(cuLibraryLoadData, {
    (void)jitOptions;
    (void)jitOptionsValues;
    (void)numJitOptions;
    (void)libraryOptions;
    (void)libraryOptionValues;
    (void)numLibraryOptions;
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    if (library == nullptr || code == nullptr) return CUDA_ERROR_INVALID_VALUE;
    ProcLock lk;
    auto* l = new CUlib_st;  // context-independent, as real libraries are
    proc().libraries.insert(l);
    *library = l;
    return CUDA_SUCCESS;
  });
}

XPU_FAKE_EXPORT CUresult cuLibraryUnload(CUlibrary library) {
  XPU_FAKE_API(cuLibraryUnload, {
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    ProcLock lk;
    if (library == nullptr || proc().libraries.erase(library) == 0) {
      return CUDA_ERROR_INVALID_HANDLE;
    }
    delete library;
    return CUDA_SUCCESS;
  });
}

XPU_FAKE_EXPORT CUresult cuLibraryGetKernel(CUkernel* pKernel, CUlibrary library,
                                            const char* name) {
  XPU_FAKE_API(cuLibraryGetKernel, {
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    if (pKernel == nullptr || name == nullptr) return CUDA_ERROR_INVALID_VALUE;
    ProcLock lk;
    if (library == nullptr || proc().libraries.count(library) == 0) {
      return CUDA_ERROR_INVALID_HANDLE;
    }
    auto& ks = library->kernels;
    auto it =
        std::find_if(ks.begin(), ks.end(), [&](const auto& k) { return k->function.name == name; });
    if (it == ks.end()) {
      ks.push_back(std::make_unique<CUkern_st>(CUkern_st{CUfunc_st{name}}));
      it = std::prev(ks.end());
    }
    *pKernel = it->get();
    return CUDA_SUCCESS;
  });
}

XPU_FAKE_EXPORT CUresult cuKernelGetFunction(CUfunction* pFunc, CUkernel kernel) {
  XPU_FAKE_API(cuKernelGetFunction, {
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    if (pFunc == nullptr) return CUDA_ERROR_INVALID_VALUE;
    if (kernel == nullptr) return CUDA_ERROR_INVALID_HANDLE;
    ProcLock lk;
    CUctx_st* c = nullptr;
    if (CUresult r = require_ctx_locked(&c); r != CUDA_SUCCESS) return r;
    *pFunc = &kernel->function;
    return CUDA_SUCCESS;
  });
}

}  // extern "C"
