// Process-local objects of the simulated driver (contexts, streams, events, pools, allocations,
// graphs, ...) and the helpers the entry points share. The opaque CUDA handle types are defined
// here, so a CUstream is simply a pointer to our CUstream_st. Every handle is validated against a
// registry before use, so a stale or foreign handle gives CUDA_ERROR_INVALID_HANDLE/CONTEXT
// instead of a crash.
//
// Locking: one process mutex (ProcLock) guards everything below; the shared device state has its
// own lock, always taken after this one. Nothing sleeps while holding either.
#pragma once

#include <pthread.h>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "device_state.hpp"
#include "fake_common.hpp"

namespace xpu_fake {
struct Capture;
}

struct CUctx_st {
  int device;
  unsigned flags;
  bool primary;
  bool active;       // footprint charged and counted as a context of this process on the device
  uint64_t charged;  // context footprint currently charged
};

enum class StreamKind : uint8_t { kUser, kLegacy, kPerThread };

struct CUstream_st {
  int device;
  unsigned flags;  // CU_STREAM_NON_BLOCKING or 0
  int priority;
  StreamKind kind;
  uint64_t last_done_ns;       // completion time of the last work queued on it
  xpu_fake::Capture* capture;  // non-null while capturing (or invalidated, until EndCapture)
};

struct CUevent_st {
  unsigned flags;
  bool recorded;
  bool poisoned;         // queried while captured: INVALID_VALUE until re-recorded (measured)
  uint64_t done_ns;      // completion time of the work it follows
  uint64_t captured_in;  // capture id when recorded into a capture, else 0
};

struct CUmemPoolHandle_st {
  int device;
  bool device_memory;  // location DEVICE: reserved bytes count as device memory
  bool is_default;
  uint64_t max_size;   // 0 = unlimited
  uint64_t threshold;  // CU_MEMPOOL_ATTR_RELEASE_THRESHOLD
  uint64_t reserved, used, reserved_high, used_high;
};

enum class NodeKind : uint8_t { kEmpty, kKernel, kMemAlloc, kMemFree, kEventRecord };

struct CUgraphNode_st {
  NodeKind kind;
  uint64_t blocks;  // kernel: gridDimX
  uint64_t bytes;   // mem alloc
  CUdeviceptr ptr;  // mem alloc / free
};

struct CUgraph_st {
  std::vector<std::unique_ptr<CUgraphNode_st>> nodes;
  uint64_t alloc_bytes = 0;  // sum of allocation nodes: the graph memory a launch reserves
};

struct CUgraphExec_st {
  int device;
  std::vector<uint64_t> kernel_blocks;
  uint64_t alloc_bytes;
  bool mem_reserved;  // graph memory taken from the device graph pool (first upload/launch)
};

struct CUfunc_st {
  std::string name;
};
struct CUmod_st {
  std::vector<std::unique_ptr<CUfunc_st>> functions;
};
struct CUkern_st {
  CUfunc_st function;
};
struct CUlib_st {
  std::vector<std::unique_ptr<CUkern_st>> kernels;
};

struct CUarray_st {
  int device;
  uint64_t req_bytes;  // cuArrayGetMemoryRequirements size (rounded to 2 MiB)
  uint64_t bytes;      // charged: req_bytes, or 0 for sparse/deferred-mapping arrays
  CUctx_st* ctx;
};
struct CUmipmappedArray_st {
  int device;
  uint64_t req_bytes;
  uint64_t bytes;
  CUctx_st* ctx;
};

namespace xpu_fake {

struct Capture {
  uint64_t id;
  CUstreamCaptureMode mode;
  uint64_t thread;  // ThreadState::id of the thread that began it
  CUstreamCaptureStatus status;
  CUgraph_st* graph;
  CUstream_st* stream;
};

enum class AllocKind : uint8_t { kPlain, kManaged, kPool, kGraph };

struct Alloc {
  uint64_t size;
  uint64_t charged;  // bytes charged to the device for this pointer (0 for pool/graph memory)
  int device;
  CUctx_st* ctx;
  AllocKind kind;
  CUmemPoolHandle_st* pool;
};

struct VmmHandle {
  uint64_t size;
  int device;
  bool device_memory;
  int user_refs;  // cuMemCreate + cuMemRetainAllocationHandle - cuMemRelease
  int map_refs;   // live mappings: memory stays in use until the last one is unmapped
  CUmemAllocationProp prop;
};

struct GraphMemPool {
  uint64_t reserved, used, reserved_high, used_high;
};

struct PrimaryCtx {
  CUctx_st* ctx;  // null until first retained
  int refs;
  unsigned flags;
};

struct Process {
  pthread_mutex_t mu;
  std::atomic<bool> initialized{false};
  std::atomic<uint64_t> epoch{1};  // bumped in a forked child: thread-local state is stale then

  std::unordered_set<CUctx_st*> contexts;
  PrimaryCtx primary[kMaxDevices] = {};
  std::unordered_set<CUstream_st*> streams;
  CUstream_st legacy[kMaxDevices] = {};
  std::unordered_set<CUevent_st*> events;
  std::unordered_set<CUmemPoolHandle_st*> pools;
  CUmemPoolHandle_st* default_pool[kMaxDevices] = {};
  CUmemPoolHandle_st* current_pool[kMaxDevices] = {};
  std::unordered_map<CUdeviceptr, Alloc> allocs;
  std::unordered_map<void*, size_t> host_allocs;
  std::unordered_map<CUmemGenericAllocationHandle, VmmHandle> vmm_handles;
  std::map<CUdeviceptr, uint64_t> va_ranges;  // reserved VA start -> size
  std::map<CUdeviceptr, std::pair<uint64_t, CUmemGenericAllocationHandle>> mappings;
  std::unordered_set<CUarray_st*> arrays;
  std::unordered_set<CUmipmappedArray_st*> mipmaps;
  std::unordered_set<CUgraph_st*> graphs;
  std::unordered_set<CUgraphExec_st*> execs;
  std::unordered_set<CUmod_st*> modules;
  std::unordered_set<CUlib_st*> libraries;
  std::vector<Capture*> captures;  // begun and not yet ended
  GraphMemPool graph_mem[kMaxDevices] = {};
  uint64_t any_done[kMaxDevices] = {};       // last completion of any work (cuCtxSynchronize)
  uint64_t blocking_done[kMaxDevices] = {};  // ... of work on blocking streams (legacy stream)

  uint64_t next_ptr = 0x7f0000000000ull;  // fake device addresses; never dereferenced
  uint64_t next_ptr32 = 0x10000000ull;    // for the 32-bit CUDA 2.0 ABIs (cuMemAlloc)
  uint64_t next_handle = 0x1000;
  uint64_t next_capture_id = 1;
};

Process& proc();

class ProcLock {
 public:
  ProcLock() { pthread_mutex_lock(&proc().mu); }
  ~ProcLock() { pthread_mutex_unlock(&proc().mu); }
  ProcLock(const ProcLock&) = delete;
  ProcLock& operator=(const ProcLock&) = delete;
};

struct ThreadState {
  uint64_t epoch = 0;
  uint64_t id = 0;
  std::vector<CUctx_st*> stack;  // context stack; back() is current
  CUstream_st ptds[kMaxDevices] = {};
  CUstreamCaptureMode mode = CU_STREAM_CAPTURE_MODE_GLOBAL;
  ThreadState() = default;
  ThreadState(const ThreadState&) = delete;
  ThreadState& operator=(const ThreadState&) = delete;
  ~ThreadState();
};
ThreadState& thread_state();

// --- helpers; "_locked" ones need the ProcLock ---------------------------------------------------

CUresult check_init();
int device_count();
CUresult check_device(CUdevice dev);
SharedState* shared();  // never null after a successful cuInit

CUctx_st* current_ctx_locked();  // null if none or stale
CUresult require_ctx_locked(CUctx_st** out);
bool valid_ctx_locked(CUctx_st* c);
// Context footprint: charge on creation/activation, release on destroy/reset.
CUresult charge_ctx_locked(CUctx_st* c);
void release_ctx_locked(CUctx_st* c);
// Frees what a destroyed or reset context owned (plain/managed allocations, arrays).
void free_ctx_resources_locked(CUctx_st* c);

// Handles 0 / CU_STREAM_LEGACY / CU_STREAM_PER_THREAD; ptsz: the caller is a _ptsz/_ptds export,
// for which 0 means the per-thread stream.
CUresult resolve_stream_locked(CUstream h, bool ptsz, CUstream_st** out);
CUdeviceptr new_device_address_locked(uint64_t size);

// The capture rules (research §3.4). Returns CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED and invalidates
// the offending captures if a "potentially unsafe" call is prohibited for this thread now.
CUresult unsafe_call_check_locked();
void invalidate_locked(Capture* c);
// Work on the legacy stream while a blocking stream captures: CUDA_ERROR_STREAM_CAPTURE_IMPLICIT
// and the capture is invalidated.
CUresult legacy_stream_check_locked(CUstream_st* s);
bool capturing(const CUstream_st* s);

// Runs dur_ns of kernel time on s's device after s's previous work; returns the completion time.
uint64_t issue_work_locked(CUstream_st* s, uint64_t dur_ns);
// What synchronising with s waits for (the legacy stream waits for all blocking streams).
uint64_t stream_done_locked(const CUstream_st* s);
void note_done_locked(CUstream_st* s, uint64_t done);
// A synchronize lets pools release memory above their threshold (release threshold semantics).
void trim_pools_after_sync_locked();

// Pools (pools.cpp).
CUmemPoolHandle_st* default_pool_locked(int dev);
void trim_pool_locked(CUmemPoolHandle_st* p, uint64_t keep);
CUresult pool_alloc_locked(CUmemPoolHandle_st* p, uint64_t size, CUdeviceptr* out);
CUresult free_async_locked(CUdeviceptr ptr);

// Graph memory pool of a device (graphs.cpp).
CUresult graph_mem_reserve_locked(int dev, uint64_t bytes);
void graph_mem_release_locked(int dev, uint64_t bytes);

uint64_t ns_per_block();

}  // namespace xpu_fake
