// Process-local state of the simulated driver: the registry, fork handling, the per-thread
// context stack, stream resolution, the capture prohibition rules and the work/sync helpers.
#include "process.hpp"

#include <errno.h>
#include <sys/mman.h>
#include <time.h>

#include <algorithm>

namespace xpu_fake {
namespace {

std::atomic<uint64_t> g_next_thread_id{1};

void reset_stream(CUstream_st& s, int dev, StreamKind kind) {
  s.device = dev;
  s.flags = 0;
  s.priority = 0;
  s.kind = kind;
  s.last_done_ns = 0;
  s.capture = nullptr;
}

// fork(): the prepare/parent pair keeps both locks consistent across the fork. In the child the
// parent's CUDA objects are meaningless (as with the real driver): it starts over and must call
// cuInit again. Objects are dropped, not freed: other threads' pointers never existed there.
void atfork_prepare() {
  pthread_mutex_lock(&proc().mu);
  if (SharedState* s = state_if_attached()) pthread_mutex_lock(&s->lock);
}
void atfork_parent() {
  if (SharedState* s = state_if_attached()) pthread_mutex_unlock(&s->lock);
  pthread_mutex_unlock(&proc().mu);
}
void atfork_child() {
  if (SharedState* s = state_if_attached()) {
    // A file mapping shares the lock word with the parent, whose unlock releases it for both;
    // a private copy is still "held" by a thread that does not exist here.
    if (state_is_private()) init_shared_mutex(&s->lock);
  }
  Process& p = proc();
  pthread_mutex_init(&p.mu, nullptr);
  p.initialized.store(false);
  p.contexts.clear();
  for (auto& pc : p.primary) pc = PrimaryCtx{};
  p.streams.clear();
  for (int d = 0; d < kMaxDevices; ++d) reset_stream(p.legacy[d], d, StreamKind::kLegacy);
  p.events.clear();
  p.pools.clear();
  for (auto& dp : p.default_pool) dp = nullptr;
  for (auto& cp : p.current_pool) cp = nullptr;
  p.allocs.clear();
  p.host_allocs.clear();
  p.vmm_handles.clear();
  p.va_ranges.clear();
  p.mappings.clear();
  p.arrays.clear();
  p.mipmaps.clear();
  p.graphs.clear();
  p.execs.clear();
  p.modules.clear();
  p.libraries.clear();
  p.captures.clear();
  for (auto& g : p.graph_mem) g = GraphMemPool{};
  for (auto& v : p.any_done) v = 0;
  for (auto& v : p.blocking_done) v = 0;
  p.epoch.fetch_add(1);
}

}  // namespace

Process& proc() {
  static Process* p = [] {
    auto* np = new Process;
    pthread_mutex_init(&np->mu, nullptr);
    for (int d = 0; d < kMaxDevices; ++d) reset_stream(np->legacy[d], d, StreamKind::kLegacy);
    pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
    return np;
  }();
  return *p;
}

ThreadState& thread_state() {
  thread_local ThreadState t;
  const uint64_t e = proc().epoch.load(std::memory_order_acquire);
  if (t.epoch != e) {
    t.epoch = e;
    t.id = g_next_thread_id.fetch_add(1);
    t.stack.clear();
    for (int d = 0; d < kMaxDevices; ++d) reset_stream(t.ptds[d], d, StreamKind::kPerThread);
    t.mode = CU_STREAM_CAPTURE_MODE_GLOBAL;
  }
  return t;
}

ThreadState::~ThreadState() {
  // A capture on this thread's per-thread stream cannot outlive the stream.
  bool any = false;
  for (auto& s : ptds) any = any || s.capture != nullptr;
  if (!any || epoch != proc().epoch.load()) return;
  ProcLock lk;
  auto& caps = proc().captures;
  for (auto& s : ptds) {
    if (s.capture == nullptr) continue;
    Capture* c = s.capture;
    caps.erase(std::remove(caps.begin(), caps.end(), c), caps.end());
    delete c->graph;
    delete c;
    s.capture = nullptr;
  }
}

void sleep_until_ns(uint64_t t) {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(t / 1000000000ull);
  ts.tv_nsec = static_cast<long>(t % 1000000000ull);
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

CUresult check_init() {
  return proc().initialized.load(std::memory_order_acquire) ? CUDA_SUCCESS
                                                            : CUDA_ERROR_NOT_INITIALIZED;
}

SharedState* shared() { return state(); }

int device_count() {
  SharedState* s = state();
  return s == nullptr ? 0 : static_cast<int>(s->device_count);
}

CUresult check_device(CUdevice dev) {
  return dev >= 0 && dev < device_count() ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;
}

uint64_t ns_per_block() { return shared()->ns_per_block; }

bool valid_ctx_locked(CUctx_st* c) { return c != nullptr && proc().contexts.count(c) != 0; }

CUctx_st* current_ctx_locked() {
  ThreadState& t = thread_state();
  if (t.stack.empty()) return nullptr;
  CUctx_st* c = t.stack.back();
  return valid_ctx_locked(c) ? c : nullptr;
}

CUresult require_ctx_locked(CUctx_st** out) {
  *out = current_ctx_locked();
  return *out != nullptr ? CUDA_SUCCESS : CUDA_ERROR_INVALID_CONTEXT;
}

CUresult charge_ctx_locked(CUctx_st* c) {
  if (c->active) return CUDA_SUCCESS;
  SharedState* s = shared();
  SharedLock lk(s);
  if (!charge_locked(s, c->device, s->ctx_bytes)) return CUDA_ERROR_OUT_OF_MEMORY;
  add_context_locked(s, c->device, +1);
  c->charged = s->ctx_bytes;
  c->active = true;
  return CUDA_SUCCESS;
}

void release_ctx_locked(CUctx_st* c) {
  if (!c->active) return;
  SharedState* s = shared();
  SharedLock lk(s);
  uncharge_locked(s, c->device, c->charged);
  add_context_locked(s, c->device, -1);
  c->charged = 0;
  c->active = false;
}

void free_ctx_resources_locked(CUctx_st* c) {
  Process& p = proc();
  for (auto it = p.allocs.begin(); it != p.allocs.end();) {
    const Alloc& a = it->second;
    if (a.ctx == c && (a.kind == AllocKind::kPlain || a.kind == AllocKind::kManaged)) {
      uncharge(a.device, a.charged);
      it = p.allocs.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = p.arrays.begin(); it != p.arrays.end();) {
    if ((*it)->ctx == c) {
      uncharge((*it)->device, (*it)->bytes);
      delete *it;
      it = p.arrays.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = p.mipmaps.begin(); it != p.mipmaps.end();) {
    if ((*it)->ctx == c) {
      uncharge((*it)->device, (*it)->bytes);
      delete *it;
      it = p.mipmaps.erase(it);
    } else {
      ++it;
    }
  }
}

CUresult resolve_stream_locked(CUstream h, bool ptsz, CUstream_st** out) {
  const auto v = reinterpret_cast<uintptr_t>(h);
  if (v == 0 || v == 1 || v == 2) {
    CUctx_st* c = current_ctx_locked();
    if (c == nullptr) return CUDA_ERROR_INVALID_CONTEXT;
    const bool per_thread = v == 2 || (v == 0 && ptsz);
    *out = per_thread ? &thread_state().ptds[c->device] : &proc().legacy[c->device];
    return CUDA_SUCCESS;
  }
  if (proc().streams.count(h) == 0) return CUDA_ERROR_INVALID_HANDLE;
  *out = h;
  return CUDA_SUCCESS;
}

CUdeviceptr new_device_address_locked(uint64_t size) {
  Process& p = proc();
  CUdeviceptr r = p.next_ptr;
  // 2 MiB-aligned blocks with a gap: distinct, aligned, easy to read in logs.
  p.next_ptr += round_up(std::max<uint64_t>(size, 1), kGranularity) + kGranularity;
  return r;
}

bool capturing(const CUstream_st* s) { return s->capture != nullptr; }

void invalidate_locked(Capture* c) { c->status = CU_STREAM_CAPTURE_STATUS_INVALIDATED; }

CUresult unsafe_call_check_locked() {
  ThreadState& t = thread_state();
  if (t.mode == CU_STREAM_CAPTURE_MODE_RELAXED) return CUDA_SUCCESS;
  bool hit = false;
  for (Capture* c : proc().captures) {
    if (c->status != CU_STREAM_CAPTURE_STATUS_ACTIVE) continue;
    // cuThreadExchangeStreamCaptureMode docs: the thread's own non-RELAXED capture prohibits
    // unsafe calls in GLOBAL and THREAD_LOCAL mode; another thread's GLOBAL capture in GLOBAL mode.
    const bool own = c->thread == t.id && c->mode != CU_STREAM_CAPTURE_MODE_RELAXED;
    const bool other_global = c->thread != t.id && c->mode == CU_STREAM_CAPTURE_MODE_GLOBAL &&
                              t.mode == CU_STREAM_CAPTURE_MODE_GLOBAL;
    if (own || other_global) {
      invalidate_locked(c);  // measured: the failing call also destroys the capture
      hit = true;
    }
  }
  return hit ? CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED : CUDA_SUCCESS;
}

CUresult legacy_stream_check_locked(CUstream_st* s) {
  if (s->kind != StreamKind::kLegacy) return CUDA_SUCCESS;
  bool hit = false;
  for (Capture* c : proc().captures) {
    if (c->status != CU_STREAM_CAPTURE_STATUS_ACTIVE) continue;
    const CUstream_st* cs = c->stream;
    if (cs->device == s->device && (cs->flags & CU_STREAM_NON_BLOCKING) == 0) {
      invalidate_locked(c);
      hit = true;
    }
  }
  return hit ? CUDA_ERROR_STREAM_CAPTURE_IMPLICIT : CUDA_SUCCESS;
}

uint64_t stream_done_locked(const CUstream_st* s) {
  const Process& p = proc();
  if (s->kind == StreamKind::kLegacy) {
    return std::max(s->last_done_ns, p.blocking_done[s->device]);
  }
  if ((s->flags & CU_STREAM_NON_BLOCKING) == 0) {
    return std::max(s->last_done_ns, p.legacy[s->device].last_done_ns);
  }
  return s->last_done_ns;
}

void note_done_locked(CUstream_st* s, uint64_t done) {
  Process& p = proc();
  const int d = s->device;
  s->last_done_ns = std::max(s->last_done_ns, done);
  p.any_done[d] = std::max(p.any_done[d], done);
  if ((s->flags & CU_STREAM_NON_BLOCKING) == 0) {
    p.blocking_done[d] = std::max(p.blocking_done[d], done);
  }
}

uint64_t issue_work_locked(CUstream_st* s, uint64_t dur_ns) {
  const uint64_t done = run_on_timeline(shared(), s->device, stream_done_locked(s), dur_ns);
  note_done_locked(s, done);
  return done;
}

void trim_pools_after_sync_locked() {
  for (CUmemPoolHandle_st* p : proc().pools) trim_pool_locked(p, p->threshold);
}

}  // namespace xpu_fake
