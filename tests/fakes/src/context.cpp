// Contexts: primary contexts (retain/release/reset/state), created contexts, the per-thread
// context stack and cuCtxSynchronize. A context charges XPU_FAKE_CTX_BYTES to the device and to
// this pid while it is active, as the real driver's context footprint does.
#include <algorithm>

#include "exports.hpp"
#include "process.hpp"

namespace xpu_fake {
namespace {

CUresult create_ctx(CUcontext* pctx, unsigned flags, CUdevice dev) {
  if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
  if (pctx == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = check_device(dev); r != CUDA_SUCCESS) return r;
  ProcLock lk;
  auto* c = new CUctx_st{dev, flags, false, false, 0};
  if (CUresult r = charge_ctx_locked(c); r != CUDA_SUCCESS) {
    delete c;
    return r;
  }
  proc().contexts.insert(c);
  thread_state().stack.push_back(c);  // a new context becomes current
  *pctx = c;
  return CUDA_SUCCESS;
}

// Drops a context: what it owned, its footprint, and every reference in this thread's stack.
void retire_ctx_locked(CUctx_st* c) {
  free_ctx_resources_locked(c);
  release_ctx_locked(c);
  proc().contexts.erase(c);
  auto& st = thread_state().stack;
  st.erase(std::remove(st.begin(), st.end(), c), st.end());
}

CUresult destroy_ctx(CUcontext ctx) {
  if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
  ProcLock lk;
  if (!valid_ctx_locked(ctx) || ctx->primary) return CUDA_ERROR_INVALID_CONTEXT;
  retire_ctx_locked(ctx);
  delete ctx;
  return CUDA_SUCCESS;
}

CUresult primary_release(CUdevice dev) {
  if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
  if (CUresult r = check_device(dev); r != CUDA_SUCCESS) return r;
  ProcLock lk;
  PrimaryCtx& pc = proc().primary[dev];
  if (pc.ctx == nullptr || pc.refs == 0) return CUDA_ERROR_INVALID_CONTEXT;
  if (--pc.refs == 0) retire_ctx_locked(pc.ctx);  // object kept: a later retain reuses it
  return CUDA_SUCCESS;
}

CUresult primary_reset(CUdevice dev) {
  if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
  if (CUresult r = check_device(dev); r != CUDA_SUCCESS) return r;
  ProcLock lk;
  PrimaryCtx& pc = proc().primary[dev];
  if (pc.ctx != nullptr && pc.refs > 0) retire_ctx_locked(pc.ctx);
  pc.refs = 0;
  return CUDA_SUCCESS;
}

CUresult primary_set_flags(CUdevice dev, unsigned flags) {
  if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
  if (CUresult r = check_device(dev); r != CUDA_SUCCESS) return r;
  ProcLock lk;
  PrimaryCtx& pc = proc().primary[dev];
  pc.flags = flags;
  if (pc.ctx != nullptr) pc.ctx->flags = flags;
  return CUDA_SUCCESS;
}

CUresult push_ctx(CUcontext ctx) {
  if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
  ProcLock lk;
  if (!valid_ctx_locked(ctx)) return CUDA_ERROR_INVALID_CONTEXT;
  thread_state().stack.push_back(ctx);
  return CUDA_SUCCESS;
}

CUresult pop_ctx(CUcontext* pctx) {
  if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
  ProcLock lk;
  auto& st = thread_state().stack;
  if (st.empty()) return CUDA_ERROR_INVALID_CONTEXT;
  if (pctx != nullptr) *pctx = st.back();
  st.pop_back();
  return CUDA_SUCCESS;
}

CUresult ctx_synchronize(CUcontext ctx) {
  if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
  uint64_t until = 0;
  {
    ProcLock lk;
    CUctx_st* c = ctx != nullptr ? ctx : current_ctx_locked();
    if (!valid_ctx_locked(c)) return CUDA_ERROR_INVALID_CONTEXT;
    // Measured: cuCtxSynchronize fails with 900 and invalidates every capture, in any mode.
    bool hit = false;
    for (Capture* cap : proc().captures) {
      if (cap->status == CU_STREAM_CAPTURE_STATUS_ACTIVE) {
        invalidate_locked(cap);
        hit = true;
      }
    }
    if (hit) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    until = proc().any_done[c->device];
  }
  sleep_until_ns(until);
  ProcLock lk;
  trim_pools_after_sync_locked();
  return CUDA_SUCCESS;
}

}  // namespace
}  // namespace xpu_fake

using namespace xpu_fake;

extern "C" {

XPU_FAKE_EXPORT CUresult cuDevicePrimaryCtxRetain(CUcontext* pctx, CUdevice dev) {
  XPU_FAKE_API(cuDevicePrimaryCtxRetain, {
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    if (pctx == nullptr) return CUDA_ERROR_INVALID_VALUE;
    if (CUresult r = check_device(dev); r != CUDA_SUCCESS) return r;
    ProcLock lk;
    PrimaryCtx& pc = proc().primary[dev];
    if (pc.ctx == nullptr) pc.ctx = new CUctx_st{dev, pc.flags, true, false, 0};
    if (pc.refs == 0) {
      // First retain (again): the primary context comes to life and costs its footprint.
      if (CUresult r = charge_ctx_locked(pc.ctx); r != CUDA_SUCCESS) return r;
      proc().contexts.insert(pc.ctx);
    }
    ++pc.refs;
    *pctx = pc.ctx;
    return CUDA_SUCCESS;
  });
}

XPU_FAKE_EXPORT CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev) {
  XPU_FAKE_API(cuDevicePrimaryCtxRelease_v2, return primary_release(dev););
}
XPU_FAKE_EXPORT CUresult cuDevicePrimaryCtxRelease(CUdevice dev) {
  XPU_FAKE_API(cuDevicePrimaryCtxRelease, return primary_release(dev););
}
XPU_FAKE_EXPORT CUresult cuDevicePrimaryCtxReset_v2(CUdevice dev) {
  XPU_FAKE_API(cuDevicePrimaryCtxReset_v2, return primary_reset(dev););
}
XPU_FAKE_EXPORT CUresult cuDevicePrimaryCtxReset(CUdevice dev) {
  XPU_FAKE_API(cuDevicePrimaryCtxReset, return primary_reset(dev););
}
XPU_FAKE_EXPORT CUresult cuDevicePrimaryCtxSetFlags_v2(CUdevice dev, unsigned int flags) {
  XPU_FAKE_API(cuDevicePrimaryCtxSetFlags_v2, return primary_set_flags(dev, flags););
}
XPU_FAKE_EXPORT CUresult cuDevicePrimaryCtxSetFlags(CUdevice dev, unsigned int flags) {
  XPU_FAKE_API(cuDevicePrimaryCtxSetFlags, return primary_set_flags(dev, flags););
}

XPU_FAKE_EXPORT CUresult cuDevicePrimaryCtxGetState(CUdevice dev, unsigned int* flags,
                                                    int* active) {
  XPU_FAKE_API(cuDevicePrimaryCtxGetState, {
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    if (flags == nullptr || active == nullptr) return CUDA_ERROR_INVALID_VALUE;
    if (CUresult r = check_device(dev); r != CUDA_SUCCESS) return r;
    ProcLock lk;
    const PrimaryCtx& pc = proc().primary[dev];
    *flags = pc.flags;
    *active = pc.refs > 0 ? 1 : 0;
    return CUDA_SUCCESS;
  });
}

XPU_FAKE_EXPORT CUresult cuCtxCreate_v4(CUcontext* pctx, CUctxCreateParams* ctxCreateParams,
                                        unsigned int flags, CUdevice dev) {
  XPU_FAKE_API(cuCtxCreate_v4, {
    (void)ctxCreateParams;
    return create_ctx(pctx, flags, dev);
  });
}
XPU_FAKE_EXPORT CUresult cuCtxCreate_v3(CUcontext* pctx, CUexecAffinityParam* paramsArray,
                                        int numParams, unsigned int flags, CUdevice dev) {
  XPU_FAKE_API(cuCtxCreate_v3, {
    (void)paramsArray;
    (void)numParams;
    return create_ctx(pctx, flags, dev);
  });
}
XPU_FAKE_EXPORT CUresult cuCtxCreate_v2(CUcontext* pctx, unsigned int flags, CUdevice dev) {
  XPU_FAKE_API(cuCtxCreate_v2, return create_ctx(pctx, flags, dev););
}
XPU_FAKE_EXPORT CUresult cuCtxCreate(CUcontext* pctx, unsigned int flags, CUdevice dev) {
  XPU_FAKE_API(cuCtxCreate, return create_ctx(pctx, flags, dev););
}

XPU_FAKE_EXPORT CUresult cuCtxDestroy_v2(CUcontext ctx) {
  XPU_FAKE_API(cuCtxDestroy_v2, return destroy_ctx(ctx););
}
XPU_FAKE_EXPORT CUresult cuCtxDestroy(CUcontext ctx) {
  XPU_FAKE_API(cuCtxDestroy, return destroy_ctx(ctx););
}

XPU_FAKE_EXPORT CUresult cuCtxSetCurrent(CUcontext ctx) {
  XPU_FAKE_API(cuCtxSetCurrent, {
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    ProcLock lk;
    auto& st = thread_state().stack;
    if (ctx == nullptr) {
      if (!st.empty()) st.pop_back();
      return CUDA_SUCCESS;
    }
    if (!valid_ctx_locked(ctx)) return CUDA_ERROR_INVALID_CONTEXT;
    if (st.empty()) {
      st.push_back(ctx);
    } else {
      st.back() = ctx;
    }
    return CUDA_SUCCESS;
  });
}

XPU_FAKE_EXPORT CUresult cuCtxGetCurrent(CUcontext* pctx) {
  XPU_FAKE_API(cuCtxGetCurrent, {
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    if (pctx == nullptr) return CUDA_ERROR_INVALID_VALUE;
    ProcLock lk;
    *pctx = current_ctx_locked();
    return CUDA_SUCCESS;
  });
}

XPU_FAKE_EXPORT CUresult cuCtxPushCurrent_v2(CUcontext ctx) {
  XPU_FAKE_API(cuCtxPushCurrent_v2, return push_ctx(ctx););
}
XPU_FAKE_EXPORT CUresult cuCtxPushCurrent(CUcontext ctx) {
  XPU_FAKE_API(cuCtxPushCurrent, return push_ctx(ctx););
}
XPU_FAKE_EXPORT CUresult cuCtxPopCurrent_v2(CUcontext* pctx) {
  XPU_FAKE_API(cuCtxPopCurrent_v2, return pop_ctx(pctx););
}
XPU_FAKE_EXPORT CUresult cuCtxPopCurrent(CUcontext* pctx) {
  XPU_FAKE_API(cuCtxPopCurrent, return pop_ctx(pctx););
}

XPU_FAKE_EXPORT CUresult cuCtxGetDevice(CUdevice* device) {
  XPU_FAKE_API(cuCtxGetDevice, {
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    if (device == nullptr) return CUDA_ERROR_INVALID_VALUE;
    ProcLock lk;
    CUctx_st* c = nullptr;
    if (CUresult r = require_ctx_locked(&c); r != CUDA_SUCCESS) return r;
    *device = c->device;
    return CUDA_SUCCESS;
  });
}

XPU_FAKE_EXPORT CUresult cuCtxGetDevice_v2(CUdevice* device, CUcontext ctx) {
  XPU_FAKE_API(cuCtxGetDevice_v2, {
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    if (device == nullptr) return CUDA_ERROR_INVALID_VALUE;
    ProcLock lk;
    CUctx_st* c = ctx != nullptr ? ctx : current_ctx_locked();
    if (!valid_ctx_locked(c)) return CUDA_ERROR_INVALID_CONTEXT;
    *device = c->device;
    return CUDA_SUCCESS;
  });
}

XPU_FAKE_EXPORT CUresult cuCtxGetFlags(unsigned int* flags) {
  XPU_FAKE_API(cuCtxGetFlags, {
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    if (flags == nullptr) return CUDA_ERROR_INVALID_VALUE;
    ProcLock lk;
    CUctx_st* c = nullptr;
    if (CUresult r = require_ctx_locked(&c); r != CUDA_SUCCESS) return r;
    *flags = c->flags;
    return CUDA_SUCCESS;
  });
}

XPU_FAKE_EXPORT CUresult cuCtxSynchronize(void) {
  XPU_FAKE_API(cuCtxSynchronize, return ctx_synchronize(nullptr););
}
XPU_FAKE_EXPORT CUresult cuCtxSynchronize_v2(CUcontext ctx) {
  XPU_FAKE_API(cuCtxSynchronize_v2, return ctx_synchronize(ctx););
}

}  // extern "C"
