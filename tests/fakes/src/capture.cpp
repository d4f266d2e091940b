// Stream capture (simplified from the measured rules, research §3.4): begin/end, status queries
// and the thread's capture interaction mode. The prohibition of "potentially unsafe" calls lives
// in process.cpp (unsafe_call_check_locked) and is applied by cuEventQuery/Synchronize,
// cuStreamQuery/Synchronize and cuMemAlloc/cuMemFree; cuCtxSynchronize always fails during a
// capture. A failing call invalidates the capture: cuStreamEndCapture then returns
// CUDA_ERROR_STREAM_CAPTURE_INVALIDATED and a NULL graph.
#include <algorithm>

#include "exports.hpp"
#include "process.hpp"

namespace xpu_fake {
namespace {

CUresult begin_capture(CUstream h, CUstreamCaptureMode mode, bool ptsz) {
  if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
  if (mode != CU_STREAM_CAPTURE_MODE_GLOBAL && mode != CU_STREAM_CAPTURE_MODE_THREAD_LOCAL &&
      mode != CU_STREAM_CAPTURE_MODE_RELAXED) {
    return CUDA_ERROR_INVALID_VALUE;
  }
  ProcLock lk;
  CUstream_st* s = nullptr;
  if (CUresult r = resolve_stream_locked(h, ptsz, &s); r != CUDA_SUCCESS) return r;
  // Measured: the legacy stream cannot be captured (900); CU_STREAM_PER_THREAD can.
  if (s->kind == StreamKind::kLegacy) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
  if (capturing(s)) return CUDA_ERROR_ILLEGAL_STATE;
  Process& p = proc();
  auto* c =
      new Capture{p.next_capture_id++, mode, thread_state().id, CU_STREAM_CAPTURE_STATUS_ACTIVE,
                  new CUgraph_st,      s};
  s->capture = c;
  p.captures.push_back(c);
  return CUDA_SUCCESS;
}

CUresult end_capture(CUstream h, CUgraph* phGraph, bool ptsz) {
  if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
  if (phGraph == nullptr) return CUDA_ERROR_INVALID_VALUE;
  ProcLock lk;
  CUstream_st* s = nullptr;
  if (CUresult r = resolve_stream_locked(h, ptsz, &s); r != CUDA_SUCCESS) return r;
  Capture* c = s->capture;
  if (c == nullptr) return CUDA_ERROR_ILLEGAL_STATE;
  if (c->mode != CU_STREAM_CAPTURE_MODE_RELAXED && c->thread != thread_state().id) {
    return CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD;
  }
  Process& p = proc();
  p.captures.erase(std::remove(p.captures.begin(), p.captures.end(), c), p.captures.end());
  s->capture = nullptr;
  const bool ok = c->status == CU_STREAM_CAPTURE_STATUS_ACTIVE;
  CUgraph_st* g = c->graph;
  delete c;
  if (!ok) {
    delete g;
    *phGraph = nullptr;
    return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
  }
  p.graphs.insert(g);
  *phGraph = g;
  return CUDA_SUCCESS;
}

// Status of a stream. On the legacy stream while a blocking stream captures the driver answers
// CUDA_ERROR_STREAM_CAPTURE_IMPLICIT (without invalidating anything).
CUresult capture_status(CUstream h, bool ptsz, CUstreamCaptureStatus* status, Capture** cap) {
  CUstream_st* s = nullptr;
  if (CUresult r = resolve_stream_locked(h, ptsz, &s); r != CUDA_SUCCESS) return r;
  *cap = s->capture;
  if (s->kind == StreamKind::kLegacy) {
    for (Capture* c : proc().captures) {
      const CUstream_st* cs = c->stream;
      if (c->status == CU_STREAM_CAPTURE_STATUS_ACTIVE && cs->device == s->device &&
          (cs->flags & CU_STREAM_NON_BLOCKING) == 0) {
        return CUDA_ERROR_STREAM_CAPTURE_IMPLICIT;
      }
    }
  }
  *status = *cap == nullptr ? CU_STREAM_CAPTURE_STATUS_NONE : (*cap)->status;
  return CUDA_SUCCESS;
}

CUresult is_capturing(CUstream h, CUstreamCaptureStatus* status, bool ptsz) {
  if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
  if (status == nullptr) return CUDA_ERROR_INVALID_VALUE;
  ProcLock lk;
  Capture* c = nullptr;
  return capture_status(h, ptsz, status, &c);
}

CUresult capture_info(CUstream h, bool ptsz, CUstreamCaptureStatus* status, cuuint64_t* id,
                      CUgraph* graph, const CUgraphNode** deps, const CUgraphEdgeData** edges,
                      size_t* num_deps) {
  if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
  if (status == nullptr) return CUDA_ERROR_INVALID_VALUE;
  ProcLock lk;
  Capture* c = nullptr;
  if (CUresult r = capture_status(h, ptsz, status, &c); r != CUDA_SUCCESS) return r;
  if (id != nullptr) *id = c != nullptr ? c->id : 0;
  if (graph != nullptr) *graph = c != nullptr ? c->graph : nullptr;
  if (deps != nullptr) *deps = nullptr;  // dependency sets are not modelled
  if (edges != nullptr) *edges = nullptr;
  if (num_deps != nullptr) *num_deps = 0;
  return CUDA_SUCCESS;
}

}  // namespace
}  // namespace xpu_fake

using namespace xpu_fake;

extern "C" {

XPU_FAKE_EXPORT CUresult cuStreamBeginCapture_v2(CUstream hStream, CUstreamCaptureMode mode) {
  XPU_FAKE_API(cuStreamBeginCapture_v2, return begin_capture(hStream, mode, false););
}
XPU_FAKE_EXPORT CUresult cuStreamBeginCapture_v2_ptsz(CUstream hStream, CUstreamCaptureMode mode) {
  XPU_FAKE_API(cuStreamBeginCapture_v2_ptsz, return begin_capture(hStream, mode, true););
}
// The CUDA 10.0 ABI has no mode argument: it captures in GLOBAL mode.
XPU_FAKE_EXPORT CUresult cuStreamBeginCapture(CUstream hStream) {
  XPU_FAKE_API(cuStreamBeginCapture,
               return begin_capture(hStream, CU_STREAM_CAPTURE_MODE_GLOBAL, false););
}
XPU_FAKE_EXPORT CUresult cuStreamBeginCapture_ptsz(CUstream hStream) {
  XPU_FAKE_API(cuStreamBeginCapture_ptsz,
               return begin_capture(hStream, CU_STREAM_CAPTURE_MODE_GLOBAL, true););
}

XPU_FAKE_EXPORT CUresult cuStreamEndCapture(CUstream hStream, CUgraph* phGraph) {
  XPU_FAKE_API(cuStreamEndCapture, return end_capture(hStream, phGraph, false););
}
XPU_FAKE_EXPORT CUresult cuStreamEndCapture_ptsz(CUstream hStream, CUgraph* phGraph) {
  XPU_FAKE_API(cuStreamEndCapture_ptsz, return end_capture(hStream, phGraph, true););
}

XPU_FAKE_EXPORT CUresult cuStreamIsCapturing(CUstream hStream,
                                             CUstreamCaptureStatus* captureStatus) {
  XPU_FAKE_API(cuStreamIsCapturing, return is_capturing(hStream, captureStatus, false););
}
XPU_FAKE_EXPORT CUresult cuStreamIsCapturing_ptsz(CUstream hStream,
                                                  CUstreamCaptureStatus* captureStatus) {
  XPU_FAKE_API(cuStreamIsCapturing_ptsz, return is_capturing(hStream, captureStatus, true););
}

XPU_FAKE_EXPORT CUresult cuStreamGetCaptureInfo(CUstream hStream,
                                                CUstreamCaptureStatus* captureStatus_out,
                                                cuuint64_t* id_out) {
  XPU_FAKE_API(cuStreamGetCaptureInfo,
               return capture_info(hStream, false, captureStatus_out, id_out, nullptr, nullptr,
                                   nullptr, nullptr););
}
XPU_FAKE_EXPORT CUresult cuStreamGetCaptureInfo_ptsz(CUstream hStream,
                                                     CUstreamCaptureStatus* captureStatus_out,
                                                     cuuint64_t* id_out) {
  XPU_FAKE_API(cuStreamGetCaptureInfo_ptsz,
               return capture_info(hStream, true, captureStatus_out, id_out, nullptr, nullptr,
                                   nullptr, nullptr););
}
XPU_FAKE_EXPORT CUresult cuStreamGetCaptureInfo_v2(CUstream hStream,
                                                   CUstreamCaptureStatus* captureStatus_out,
                                                   cuuint64_t* id_out, CUgraph* graph_out,
                                                   const CUgraphNode** dependencies_out,
                                                   size_t* numDependencies_out) {
  XPU_FAKE_API(cuStreamGetCaptureInfo_v2,
               return capture_info(hStream, false, captureStatus_out, id_out, graph_out,
                                   dependencies_out, nullptr, numDependencies_out););
}
XPU_FAKE_EXPORT CUresult cuStreamGetCaptureInfo_v2_ptsz(CUstream hStream,
                                                        CUstreamCaptureStatus* captureStatus_out,
                                                        cuuint64_t* id_out, CUgraph* graph_out,
                                                        const CUgraphNode** dependencies_out,
                                                        size_t* numDependencies_out) {
  XPU_FAKE_API(cuStreamGetCaptureInfo_v2_ptsz,
               return capture_info(hStream, true, captureStatus_out, id_out, graph_out,
                                   dependencies_out, nullptr, numDependencies_out););
}
XPU_FAKE_EXPORT CUresult cuStreamGetCaptureInfo_v3(CUstream hStream,
                                                   CUstreamCaptureStatus* captureStatus_out,
                                                   cuuint64_t* id_out, CUgraph* graph_out,
                                                   const CUgraphNode** dependencies_out,
                                                   const CUgraphEdgeData** edgeData_out,
                                                   size_t* numDependencies_out) {
  XPU_FAKE_API(cuStreamGetCaptureInfo_v3,
               return capture_info(hStream, false, captureStatus_out, id_out, graph_out,
                                   dependencies_out, edgeData_out, numDependencies_out););
}
XPU_FAKE_EXPORT CUresult cuStreamGetCaptureInfo_v3_ptsz(CUstream hStream,
                                                        CUstreamCaptureStatus* captureStatus_out,
                                                        cuuint64_t* id_out, CUgraph* graph_out,
                                                        const CUgraphNode** dependencies_out,
                                                        const CUgraphEdgeData** edgeData_out,
                                                        size_t* numDependencies_out) {
  XPU_FAKE_API(cuStreamGetCaptureInfo_v3_ptsz,
               return capture_info(hStream, true, captureStatus_out, id_out, graph_out,
                                   dependencies_out, edgeData_out, numDependencies_out););
}

XPU_FAKE_EXPORT CUresult cuThreadExchangeStreamCaptureMode(CUstreamCaptureMode* mode) {
  XPU_FAKE_API(cuThreadExchangeStreamCaptureMode, {
    if (CUresult r = check_init(); r != CUDA_SUCCESS) return r;
    if (mode == nullptr) return CUDA_ERROR_INVALID_VALUE;
    if (*mode != CU_STREAM_CAPTURE_MODE_GLOBAL && *mode != CU_STREAM_CAPTURE_MODE_THREAD_LOCAL &&
        *mode != CU_STREAM_CAPTURE_MODE_RELAXED) {
      return CUDA_ERROR_INVALID_VALUE;
    }
    ThreadState& t = thread_state();
    std::swap(t.mode, *mode);
    return CUDA_SUCCESS;
  });
}

}  // extern "C"
