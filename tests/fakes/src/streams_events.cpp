// Simulated execution: streams, events and kernel launches on the device's single timeline.
// Rule: a kernel runs for gridDimX * XPU_FAKE_NS_PER_BLOCK (default 1 block = 1 us), starting at
// max(now, device busy-until, its stream's previous work); kernels of all processes therefore run
// one after another. Synchronize calls sleep until the completion time; queries compare it with
// the clock. On a capturing stream, launches and event records become graph nodes.
#include <algorithm>

#include "exports.hpp"
#include "process.hpp"

namespace xpu_fake {
namespace {

CUresult stream_create(CUstream* ph, unsigned flags, int priority) {
  if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
  if (ph == nullptr || (flags & ~static_cast<unsigned>(CU_STREAM_NON_BLOCKING)) != 0) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  ProcLock lk;
  CUctx_st* c = nullptr;
  if (CUresult r = require_ctx_locked(&c); r != CUDA_SUCCESS) return r;
  // Priorities are clamped to the H100 range [-5, 0] (greatest = -5), as the driver does.
  auto* s =
      new CUstream_st{c->device, flags, std::clamp(priority, -5, 0), StreamKind::kUser, 0, nullptr};
  proc().streams.insert(s);
  *ph = s;
  return CUDA_SUCCESS;
}

CUresult stream_destroy(CUstream h) {
  if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
  ProcLock lk;
  Process& p = proc();
  if (h == nullptr || p.streams.count(h) == 0) return CUDA_ERROR_INVALID_HANDLE;
  if (Capture* c = h->capture) {
    p.captures.erase(std::remove(p.captures.begin(), p.captures.end(), c), p.captures.end());
    delete c->graph;
    delete c;
  }
  p.streams.erase(h);
  delete h;
  return CUDA_SUCCESS;
}

// Shared checks of cuStreamQuery/cuStreamSynchronize; *until = what to wait for.
CUresult stream_wait_target(CUstream h, bool ptsz, uint64_t* until) {
  if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
  ProcLock lk;
  CUstream_st* s = nullptr;
  if (CUresult r = resolve_stream_locked(h, ptsz, &s); r != CUDA_SUCCESS) return r;
  if (capturing(s)) {  // measured: 900 and the stream's capture is invalidated
    invalidate_locked(s->capture);
    return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  }
  if (CUresult r = unsafe_call_check_locked(); r != CUDA_SUCCESS) return r;
  if (CUresult r = legacy_stream_check_locked(s); r != CUDA_SUCCESS) return r;
  *until = stream_done_locked(s);
  return CUDA_SUCCESS;
}

CUresult stream_query(CUstream h, bool ptsz) {
  uint64_t until = 0;
  if (CUresult r = stream_wait_target(h, ptsz, &until); r != CUDA_SUCCESS) return r;
  return now_ns() < until ? CUDA_ERROR_NOT_READY : CUDA_SUCCESS;
}

CUresult stream_sync(CUstream h, bool ptsz) {
  uint64_t until = 0;
  if (CUresult r = stream_wait_target(h, ptsz, &until); r != CUDA_SUCCESS) return r;
  sleep_until_ns(until);
  ProcLock lk;
  trim_pools_after_sync_locked();
  return CUDA_SUCCESS;
}

CUresult stream_wait_event(CUstream h, CUevent ev, bool ptsz) {
  if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
  ProcLock lk;
  CUstream_st* s = nullptr;
  if (CUresult r = resolve_stream_locked(h, ptsz, &s); r != CUDA_SUCCESS) return r;
  if (ev == nullptr || proc().events.count(ev) == 0) return CUDA_ERROR_INVALID_HANDLE;
  if (capturing(s)) {
    return s->capture->status == CU_STREAM_CAPTURE_STATUS_ACTIVE
               ? CUDA_SUCCESS
               : CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
  }
  if (ev->recorded) note_done_locked(s, ev->done_ns);  // later work starts after the event
  return CUDA_SUCCESS;
}

CUresult stream_get(CUstream h, bool ptsz, unsigned* flags, int* priority) {
  if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
  ProcLock lk;
  CUstream_st* s = nullptr;
  if (CUresult r = resolve_stream_locked(h, ptsz, &s); r != CUDA_SUCCESS) return r;
  if (flags != nullptr) *flags = s->flags;
  if (priority != nullptr) *priority = s->priority;
  return CUDA_SUCCESS;
}

CUresult event_record(CUevent ev, CUstream h, bool ptsz) {
  if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
  ProcLock lk;
  if (ev == nullptr || proc().events.count(ev) == 0) return CUDA_ERROR_INVALID_HANDLE;
  CUstream_st* s = nullptr;
  if (CUresult r = resolve_stream_locked(h, ptsz, &s); r != CUDA_SUCCESS) return r;
  if (capturing(s)) {
    Capture* c = s->capture;
    if (c->status != CU_STREAM_CAPTURE_STATUS_ACTIVE) return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    ev->captured_in = c->id;  // querying it while the capture lasts is an error (907)
    ev->poisoned = false;
    c->graph->nodes.push_back(
        std::make_unique<CUgraphNode_st>(CUgraphNode_st{NodeKind::kEventRecord, 0, 0, 0}));
    return CUDA_SUCCESS;
  }
  if (CUresult r = legacy_stream_check_locked(s); r != CUDA_SUCCESS) return r;
  ev->recorded = true;
  ev->poisoned = false;
  ev->captured_in = 0;
  ev->done_ns = std::max(now_ns(), stream_done_locked(s));
  return CUDA_SUCCESS;
}

// Shared checks of cuEventQuery/cuEventSynchronize; *until = the event's completion time.
CUresult event_wait_target(CUevent ev, uint64_t* until) {
  if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
  ProcLock lk;
  Process& p = proc();
  if (ev == nullptr || p.events.count(ev) == 0) return CUDA_ERROR_INVALID_HANDLE;
  if (ev->captured_in != 0) {
    for (Capture* c : p.captures) {
      if (c->id == ev->captured_in && c->status == CU_STREAM_CAPTURE_STATUS_ACTIVE) {
        // Measured: 907 and the capture is invalidated, whatever the capture mode; the event
        // then answers CUDA_ERROR_INVALID_VALUE until it is recorded again.
        invalidate_locked(c);
        ev->poisoned = true;
        return CUDA_ERROR_CAPTURED_EVENT;
      }
    }
  }
  if (ev->poisoned) return CUDA_ERROR_INVALID_VALUE;
  if (CUresult r = unsafe_call_check_locked(); r != CUDA_SUCCESS) return r;
  *until = ev->recorded ? ev->done_ns : 0;  // never recorded: complete
  return CUDA_SUCCESS;
}

CUresult event_elapsed(float* ms, CUevent start, CUevent end) {
  if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
  if (ms == nullptr) return CUDA_ERROR_INVALID_VALUE;
  ProcLock lk;
  const auto& evs = proc().events;
  if (start == nullptr || end == nullptr || evs.count(start) == 0 || evs.count(end) == 0) {
    return CUDA_ERROR_INVALID_HANDLE;
  }
  if (((start->flags | end->flags) & CU_EVENT_DISABLE_TIMING) != 0) {
    return CUDA_ERROR_INVALID_HANDLE;
  }
  if (!start->recorded || !end->recorded) return CUDA_ERROR_INVALID_HANDLE;
  const uint64_t now = now_ns();
  if (now < start->done_ns || now < end->done_ns) return CUDA_ERROR_NOT_READY;
  const double d = static_cast<double>(end->done_ns) - static_cast<double>(start->done_ns);
  *ms = static_cast<float>(d / 1e6);
  return CUDA_SUCCESS;
}

CUresult event_destroy(CUevent ev) {
  if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
  ProcLock lk;
  if (ev == nullptr || proc().events.erase(ev) == 0) return CUDA_ERROR_INVALID_HANDLE;
  delete ev;
  return CUDA_SUCCESS;
}

CUresult launch(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                unsigned bz, CUstream h, bool ptsz) {
  if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
  // Functions are not validated against a registry: a CUkernel may be passed as a CUfunction.
  if (f == nullptr) return CUDA_ERROR_INVALID_HANDLE;
  if (gx == 0 || gy == 0 || gz == 0 || bx == 0 || by == 0 || bz == 0) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  ProcLock lk;
  CUctx_st* c = nullptr;
  if (CUresult r = require_ctx_locked(&c); r != CUDA_SUCCESS) return r;
  CUstream_st* s = nullptr;
  if (CUresult r = resolve_stream_locked(h, ptsz, &s); r != CUDA_SUCCESS) return r;
  if (capturing(s)) {
    Capture* cap = s->capture;
    if (cap->status != CU_STREAM_CAPTURE_STATUS_ACTIVE) {
      return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    }
    cap->graph->nodes.push_back(
        std::make_unique<CUgraphNode_st>(CUgraphNode_st{NodeKind::kKernel, gx, 0, 0}));
    return CUDA_SUCCESS;  // captured: nothing runs now
  }
  if (CUresult r = legacy_stream_check_locked(s); r != CUDA_SUCCESS) return r;
  issue_work_locked(s, static_cast<uint64_t>(gx) * ns_per_block());
  return CUDA_SUCCESS;
}

CUresult launch_ex(const CUlaunchConfig* config, CUfunction f, bool ptsz) {
  if (config == nullptr) return CUDA_ERROR_INVALID_VALUE;
  const auto& k = *config;
  return launch(f, k.gridDimX, k.gridDimY, k.gridDimZ, k.blockDimX, k.blockDimY, k.blockDimZ,
                k.hStream, ptsz);
}

}  // namespace
}  // namespace xpu_fake

using namespace xpu_fake;

extern "C" {

XPU_FAKE_EXPORT CUresult cuStreamCreate(CUstream* phStream, unsigned int Flags) {
  XPU_FAKE_API(cuStreamCreate, return stream_create(phStream, Flags, 0););
}
XPU_FAKE_EXPORT CUresult cuStreamCreateWithPriority(CUstream* phStream, unsigned int flags,
                                                    int priority) {
  XPU_FAKE_API(cuStreamCreateWithPriority, return stream_create(phStream, flags, priority););
}
XPU_FAKE_EXPORT CUresult cuStreamDestroy_v2(CUstream hStream) {
  XPU_FAKE_API(cuStreamDestroy_v2, return stream_destroy(hStream););
}
XPU_FAKE_EXPORT CUresult cuStreamDestroy(CUstream hStream) {
  XPU_FAKE_API(cuStreamDestroy, return stream_destroy(hStream););
}
XPU_FAKE_EXPORT CUresult cuStreamQuery(CUstream hStream) {
  XPU_FAKE_API(cuStreamQuery, return stream_query(hStream, false););
}
XPU_FAKE_EXPORT CUresult cuStreamQuery_ptsz(CUstream hStream) {
  XPU_FAKE_API(cuStreamQuery_ptsz, return stream_query(hStream, true););
}
XPU_FAKE_EXPORT CUresult cuStreamSynchronize(CUstream hStream) {
  XPU_FAKE_API(cuStreamSynchronize, return stream_sync(hStream, false););
}
XPU_FAKE_EXPORT CUresult cuStreamSynchronize_ptsz(CUstream hStream) {
  XPU_FAKE_API(cuStreamSynchronize_ptsz, return stream_sync(hStream, true););
}
XPU_FAKE_EXPORT CUresult cuStreamWaitEvent(CUstream hStream, CUevent hEvent, unsigned int Flags) {
  XPU_FAKE_API(cuStreamWaitEvent, {
    (void)Flags;
    return stream_wait_event(hStream, hEvent, false);
  });
}
XPU_FAKE_EXPORT CUresult cuStreamWaitEvent_ptsz(CUstream hStream, CUevent hEvent,
                                                unsigned int Flags) {
  XPU_FAKE_API(cuStreamWaitEvent_ptsz, {
    (void)Flags;
    return stream_wait_event(hStream, hEvent, true);
  });
}
XPU_FAKE_EXPORT CUresult cuStreamGetFlags(CUstream hStream, unsigned int* flags) {
  XPU_FAKE_API(cuStreamGetFlags, {
    if (flags == nullptr) return CUDA_ERROR_INVALID_VALUE;
    return stream_get(hStream, false, flags, nullptr);
  });
}
XPU_FAKE_EXPORT CUresult cuStreamGetFlags_ptsz(CUstream hStream, unsigned int* flags) {
  XPU_FAKE_API(cuStreamGetFlags_ptsz, {
    if (flags == nullptr) return CUDA_ERROR_INVALID_VALUE;
    return stream_get(hStream, true, flags, nullptr);
  });
}
XPU_FAKE_EXPORT CUresult cuStreamGetPriority(CUstream hStream, int* priority) {
  XPU_FAKE_API(cuStreamGetPriority, {
    if (priority == nullptr) return CUDA_ERROR_INVALID_VALUE;
    return stream_get(hStream, false, nullptr, priority);
  });
}
XPU_FAKE_EXPORT CUresult cuStreamGetPriority_ptsz(CUstream hStream, int* priority) {
  XPU_FAKE_API(cuStreamGetPriority_ptsz, {
    if (priority == nullptr) return CUDA_ERROR_INVALID_VALUE;
    return stream_get(hStream, true, nullptr, priority);
  });
}

XPU_FAKE_EXPORT CUresult cuEventCreate(CUevent* phEvent, unsigned int Flags) {
  XPU_FAKE_API(cuEventCreate, {
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    if (phEvent == nullptr) return CUDA_ERROR_INVALID_VALUE;
    ProcLock lk;
    CUctx_st* c = nullptr;
    if (CUresult r = require_ctx_locked(&c); r != CUDA_SUCCESS) return r;
    auto* e = new CUevent_st{Flags, false, false, 0, 0};
    proc().events.insert(e);
    *phEvent = e;
    return CUDA_SUCCESS;
  });
}
XPU_FAKE_EXPORT CUresult cuEventDestroy_v2(CUevent hEvent) {
  XPU_FAKE_API(cuEventDestroy_v2, return event_destroy(hEvent););
}
XPU_FAKE_EXPORT CUresult cuEventDestroy(CUevent hEvent) {
  XPU_FAKE_API(cuEventDestroy, return event_destroy(hEvent););
}
XPU_FAKE_EXPORT CUresult cuEventRecord(CUevent hEvent, CUstream hStream) {
  XPU_FAKE_API(cuEventRecord, return event_record(hEvent, hStream, false););
}
XPU_FAKE_EXPORT CUresult cuEventRecord_ptsz(CUevent hEvent, CUstream hStream) {
  XPU_FAKE_API(cuEventRecord_ptsz, return event_record(hEvent, hStream, true););
}
XPU_FAKE_EXPORT CUresult cuEventRecordWithFlags(CUevent hEvent, CUstream hStream,
                                                unsigned int flags) {
  XPU_FAKE_API(cuEventRecordWithFlags, {
    (void)flags;
    return event_record(hEvent, hStream, false);
  });
}
XPU_FAKE_EXPORT CUresult cuEventRecordWithFlags_ptsz(CUevent hEvent, CUstream hStream,
                                                     unsigned int flags) {
  XPU_FAKE_API(cuEventRecordWithFlags_ptsz, {
    (void)flags;
    return event_record(hEvent, hStream, true);
  });
}
XPU_FAKE_EXPORT CUresult cuEventQuery(CUevent hEvent) {
  XPU_FAKE_API(cuEventQuery, {
    uint64_t until = 0;
    if (CUresult r = event_wait_target(hEvent, &until); r != CUDA_SUCCESS) return r;
    return now_ns() < until ? CUDA_ERROR_NOT_READY : CUDA_SUCCESS;
  });
}
XPU_FAKE_EXPORT CUresult cuEventSynchronize(CUevent hEvent) {
  XPU_FAKE_API(cuEventSynchronize, {
    uint64_t until = 0;
    if (CUresult r = event_wait_target(hEvent, &until); r != CUDA_SUCCESS) return r;
    sleep_until_ns(until);
    ProcLock lk;
    trim_pools_after_sync_locked();
    return CUDA_SUCCESS;
  });
}
XPU_FAKE_EXPORT CUresult cuEventElapsedTime_v2(float* pMilliseconds, CUevent hStart, CUevent hEnd) {
  XPU_FAKE_API(cuEventElapsedTime_v2, return event_elapsed(pMilliseconds, hStart, hEnd););
}
XPU_FAKE_EXPORT CUresult cuEventElapsedTime(float* pMilliseconds, CUevent hStart, CUevent hEnd) {
  XPU_FAKE_API(cuEventElapsedTime, return event_elapsed(pMilliseconds, hStart, hEnd););
}

XPU_FAKE_EXPORT CUresult cuLaunchKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                        unsigned int gridDimZ, unsigned int blockDimX,
                                        unsigned int blockDimY, unsigned int blockDimZ,
                                        unsigned int sharedMemBytes, CUstream hStream,
                                        void** kernelParams, void** extra) {
  XPU_FAKE_API(cuLaunchKernel, {
    (void)sharedMemBytes;
    (void)kernelParams;
    (void)extra;
    return launch(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, hStream, false);
  });
}
XPU_FAKE_EXPORT CUresult cuLaunchKernel_ptsz(CUfunction f, unsigned int gridDimX,
                                             unsigned int gridDimY, unsigned int gridDimZ,
                                             unsigned int blockDimX, unsigned int blockDimY,
                                             unsigned int blockDimZ, unsigned int sharedMemBytes,
                                             CUstream hStream, void** kernelParams, void** extra) {
  XPU_FAKE_API(cuLaunchKernel_ptsz, {
    (void)sharedMemBytes;
    (void)kernelParams;
    (void)extra;
    return launch(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, hStream, true);
  });
}
XPU_FAKE_EXPORT CUresult cuLaunchKernelEx(const CUlaunchConfig* config, CUfunction f,
                                          void** kernelParams, void** extra) {
  XPU_FAKE_API(cuLaunchKernelEx, {
    (void)kernelParams;
    (void)extra;
    return launch_ex(config, f, false);
  });
}
XPU_FAKE_EXPORT CUresult cuLaunchKernelEx_ptsz(const CUlaunchConfig* config, CUfunction f,
                                               void** kernelParams, void** extra) {
  XPU_FAKE_API(cuLaunchKernelEx_ptsz, {
    (void)kernelParams;
    (void)extra;
    return launch_ex(config, f, true);
  });
}
XPU_FAKE_EXPORT CUresult cuLaunchCooperativeKernel(CUfunction f, unsigned int gridDimX,
                                                   unsigned int gridDimY, unsigned int gridDimZ,
                                                   unsigned int blockDimX, unsigned int blockDimY,
                                                   unsigned int blockDimZ,
                                                   unsigned int sharedMemBytes, CUstream hStream,
                                                   void** kernelParams) {
  XPU_FAKE_API(cuLaunchCooperativeKernel, {
    (void)sharedMemBytes;
    (void)kernelParams;
    return launch(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, hStream, false);
  });
}
XPU_FAKE_EXPORT CUresult cuLaunchCooperativeKernel_ptsz(
    CUfunction f, unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ,
    unsigned int blockDimX, unsigned int blockDimY, unsigned int blockDimZ,
    unsigned int sharedMemBytes, CUstream hStream, void** kernelParams) {
  XPU_FAKE_API(cuLaunchCooperativeKernel_ptsz, {
    (void)sharedMemBytes;
    (void)kernelParams;
    return launch(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, hStream, true);
  });
}

}  // extern "C"
