// The simulated devices as every process sees them: memory in use per device and per process,
// the one kernel timeline per device, per-process busy time. Lives in a file mapped by every
// process (XPU_FAKE_STATE=/path) or, without it, in this process's memory. Compiled into both
// the fake libcuda.so.1 and the fake libnvidia-ml.so.1, which therefore agree on the numbers.
//
// Everything here is plain data at fixed offsets (no pointers), so the layout is the same in
// every process; the 64-bit atomics are lock-free and therefore usable in shared memory.
#pragma once

#include <pthread.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>

namespace xpu_fake {

constexpr int kMaxDevices = 8;
constexpr int kMaxPids = 1024;
constexpr uint64_t kStateMagic = 0x58505546414b4531ull;  // "XPUFAKE1"
constexpr uint32_t kStateLayout = 3;                     // bump when the layout changes

constexpr uint64_t kDefaultTotalMem = 17179869184ull;  // 16 GiB
constexpr uint64_t kDefaultCtxBytes = 268435456ull;    // 256 MiB
constexpr uint64_t kDefaultNsPerBlock = 1000;          // 1 block = 1 us

static_assert(std::atomic<uint64_t>::is_always_lock_free,
              "shared-memory atomics must be lock-free");

enum PidState : uint32_t { kPidFree = 0, kPidLive = 1, kPidDead = 2 };

struct PidRecord {
  int32_t pid;
  uint32_t state;        // PidState
  uint64_t start_ticks;  // /proc/<pid>/stat field 22 when registered; tells a reused pid apart
  uint64_t seq;          // registration order; the oldest dead record is recycled first
  uint64_t used[kMaxDevices];      // bytes charged (contexts + allocations); 0 once dead
  uint32_t contexts[kMaxDevices];  // live contexts (NVML lists a process while it has one)
  std::atomic<uint64_t> busy_ns[kMaxDevices];  // kernel time; kept after death for tests
  std::atomic<uint64_t> kernels[kMaxDevices];
};

struct DeviceRecord {
  uint64_t total;                       // bytes
  std::atomic<uint64_t> busy_until_ns;  // CLOCK_MONOTONIC end of the last scheduled kernel
  std::atomic<uint64_t> busy_total_ns;  // sum of all kernel durations
  std::atomic<uint64_t> kernels;
};

struct SharedState {
  uint64_t magic;  // written last, after everything else is initialised
  uint32_t layout;
  uint32_t device_count;
  uint64_t ctx_bytes;
  uint64_t ns_per_block;
  uint64_t created_ns;
  uint64_t next_seq;
  pthread_mutex_t lock;  // process-shared and robust: a SIGKILLed holder does not wedge others
  DeviceRecord dev[kMaxDevices];
  PidRecord pids[kMaxPids];
};

// Attaches on first use (maps/creates the file, or uses private memory). nullptr if the state
// file cannot be opened or mapped.
SharedState* state();

// The attached state without attaching (null before the first state() call).
SharedState* state_if_attached();
// true when the state lives in this process's memory (XPU_FAKE_STATE unset).
bool state_is_private();

// Provided separately by each library: the region used when XPU_FAKE_STATE is unset.
// libcuda allocates it; libnvidia-ml borrows libcuda's so both see the same devices.
SharedState* private_region();
// Fills a zeroed region from the environment (XPU_FAKE_DEVICES, _TOTAL_MEM, _CTX_BYTES, ...).
void initialise_region(SharedState* s);

// (Re)initialises the process-shared robust mutex of a region.
void init_shared_mutex(pthread_mutex_t* m);

// RAII holder of the shared lock (recovers the lock if its previous owner died).
class SharedLock {
 public:
  explicit SharedLock(SharedState* s);
  ~SharedLock();
  SharedLock(const SharedLock&) = delete;
  SharedLock& operator=(const SharedLock&) = delete;

 private:
  SharedState* s_;
};

// --- everything below requires the SharedLock unless noted --------------------------------------

// This process's record (registers it on first use); -1 if the table is full.
int self_slot_locked(SharedState* s);
// Marks records of dead processes dead and returns their memory. thorough: also detect zombies
// and reused pids through /proc (slower; used by queries and before reporting OOM).
void reap_locked(SharedState* s, bool thorough);
uint64_t device_used_locked(const SharedState* s, int dev);
// Charges bytes to this process on dev if they fit under the device total.
bool charge_locked(SharedState* s, int dev, uint64_t bytes);
void uncharge_locked(SharedState* s, int dev, uint64_t bytes);
void add_context_locked(SharedState* s, int dev, int delta);
// Newest record of pid (live first, else the most recent dead one); -1 if none.
int find_pid_locked(const SharedState* s, int32_t pid);

// --- lock-free -----------------------------------------------------------------------------------

// Cached slot of this process (takes the lock only the first time per process).
int self_slot(SharedState* s);
// Schedules a kernel of dur_ns on dev's single timeline, no earlier than not_before_ns; returns
// its completion time. Kernels of all processes run one after another.
uint64_t run_on_timeline(SharedState* s, int dev, uint64_t not_before_ns, uint64_t dur_ns);

// Convenience wrappers that take the lock themselves.
bool charge(int dev, uint64_t bytes);
void uncharge(int dev, uint64_t bytes);
uint64_t device_used(int dev, bool thorough_reap);

}  // namespace xpu_fake
