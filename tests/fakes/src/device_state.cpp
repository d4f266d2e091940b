// Shared device state: attach (file or private memory), the robust lock, per-pid records with
// lazy reaping of dead processes, memory charges, and the per-device kernel timeline.
#include "device_state.hpp"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace xpu_fake {
namespace {

uint64_t mono_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t env_u64(const char* name, uint64_t def) {
  const char* v = getenv(name);
  if (v == nullptr || *v == '\0') return def;
  char* end = nullptr;
  errno = 0;
  unsigned long long x = strtoull(v, &end, 10);
  if (errno != 0 || end == v || *end != '\0') return def;
  return x;
}

// Reads state and start time (field 22) of /proc/<pid>/stat. false if it cannot be read.
bool read_proc_stat(int32_t pid, char* state, uint64_t* start_ticks) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[1024];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  // The command name (field 2) may contain spaces and parentheses: parse after the last ')'.
  const char* p = strrchr(buf, ')');
  if (p == nullptr || p[1] == '\0') return false;
  p += 2;  // now at field 3 (state)
  *state = *p;
  int field = 3;
  while (*p != '\0' && field < 22) {
    if (*p == ' ') ++field;
    ++p;
  }
  if (field != 22) return false;
  *start_ticks = strtoull(p, nullptr, 10);
  return true;
}

bool pid_dead(const PidRecord& r, bool thorough) {
  if (kill(r.pid, 0) == -1 && errno == ESRCH) return true;
  if (!thorough) return false;
  char st = 0;
  uint64_t start = 0;
  if (!read_proc_stat(r.pid, &st, &start)) return false;  // other namespace etc.: assume alive
  if (st == 'Z' || st == 'X') return true;                // killed, not yet waited for
  return r.start_ticks != 0 && start != r.start_ticks;    // the pid now belongs to someone else
}

}  // namespace

void init_shared_mutex(pthread_mutex_t* m) {
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(m, &a);
  pthread_mutexattr_destroy(&a);
}

namespace {

SharedState* map_file(const char* path) {
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (fd < 0) return nullptr;
  // An fcntl lock over the whole file serialises the one-time initialisation between processes
  // (released by the kernel if the holder dies, unlike a lock inside the region).
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  while (fcntl(fd, F_SETLKW, &fl) == -1 && errno == EINTR) {
  }
  SharedState* s = nullptr;
  struct stat st {};
  if (fstat(fd, &st) == 0 && (static_cast<size_t>(st.st_size) >= sizeof(SharedState) ||
                              ftruncate(fd, static_cast<off_t>(sizeof(SharedState))) == 0)) {
    void* p = mmap(nullptr, sizeof(SharedState), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p != MAP_FAILED) {
      s = static_cast<SharedState*>(p);
      if (s->magic != kStateMagic || s->layout != kStateLayout) {
        memset(static_cast<void*>(s), 0, sizeof(SharedState));
        initialise_region(s);
      }
    }
  }
  fl.l_type = F_UNLCK;
  fcntl(fd, F_SETLK, &fl);
  close(fd);  // the mapping stays valid
  return s;
}

std::atomic<SharedState*> g_attached{nullptr};
bool g_private = false;
std::atomic<int> g_slot{-1};
std::atomic<int32_t> g_slot_pid{0};

}  // namespace

void initialise_region(SharedState* s) {
  s->layout = kStateLayout;
  uint64_t n = env_u64("XPU_FAKE_DEVICES", 1);
  s->device_count = static_cast<uint32_t>(std::clamp<uint64_t>(n, 1, kMaxDevices));
  s->ctx_bytes = env_u64("XPU_FAKE_CTX_BYTES", kDefaultCtxBytes);
  s->ns_per_block = env_u64("XPU_FAKE_NS_PER_BLOCK", kDefaultNsPerBlock);
  s->created_ns = mono_ns();
  s->next_seq = 1;
  init_shared_mutex(&s->lock);
  uint64_t total = env_u64("XPU_FAKE_TOTAL_MEM", kDefaultTotalMem);
  for (auto& d : s->dev) d.total = total;
  std::atomic_thread_fence(std::memory_order_release);
  s->magic = kStateMagic;
}

SharedState* state() {
  // A leaked pointer, computed once: no destructor runs at exit, and callers during exit() work.
  static SharedState* s = [] {
    const char* path = getenv("XPU_FAKE_STATE");
    SharedState* r = nullptr;
    if (path != nullptr && *path != '\0') {
      r = map_file(path);
    } else {
      g_private = true;
      r = private_region();
    }
    g_attached.store(r, std::memory_order_release);
    return r;
  }();
  return s;
}

SharedState* state_if_attached() { return g_attached.load(std::memory_order_acquire); }
bool state_is_private() { return g_private; }

SharedLock::SharedLock(SharedState* s) : s_(s) {
  if (pthread_mutex_lock(&s_->lock) == EOWNERDEAD) pthread_mutex_consistent(&s_->lock);
}
SharedLock::~SharedLock() { pthread_mutex_unlock(&s_->lock); }

int self_slot_locked(SharedState* s) {
  const int32_t me = static_cast<int32_t>(getpid());
  if (g_slot_pid.load(std::memory_order_acquire) == me) {
    const int cached = g_slot.load();
    if (s->pids[cached].pid == me && s->pids[cached].state == kPidLive) return cached;
  }
  char st = 0;
  uint64_t start = 0;
  if (!read_proc_stat(me, &st, &start)) start = 0;
  int free_slot = -1;
  int oldest_dead = -1;
  for (int i = 0; i < kMaxPids; ++i) {
    PidRecord& r = s->pids[i];
    if (r.state == kPidFree) {
      if (free_slot < 0) free_slot = i;
      continue;
    }
    if (r.pid == me) {
      if (r.state == kPidLive && (r.start_ticks == 0 || start == 0 || r.start_ticks == start)) {
        g_slot.store(i);
        g_slot_pid.store(me, std::memory_order_release);
        return i;
      }
      r.state = kPidFree;  // a stale record of an earlier process with our pid
      if (free_slot < 0) free_slot = i;
      continue;
    }
    if (r.state == kPidDead && (oldest_dead < 0 || r.seq < s->pids[oldest_dead].seq)) {
      oldest_dead = i;
    }
  }
  int slot = free_slot >= 0 ? free_slot : oldest_dead;
  if (slot < 0) {
    reap_locked(s, true);
    return -1;
  }
  PidRecord& r = s->pids[slot];
  r.pid = me;
  r.start_ticks = start;
  r.seq = s->next_seq++;
  for (int d = 0; d < kMaxDevices; ++d) {
    r.used[d] = 0;
    r.contexts[d] = 0;
    r.busy_ns[d].store(0, std::memory_order_relaxed);
    r.kernels[d].store(0, std::memory_order_relaxed);
  }
  r.state = kPidLive;
  g_slot.store(slot);
  g_slot_pid.store(me, std::memory_order_release);
  return slot;
}

int self_slot(SharedState* s) {
  const int32_t me = static_cast<int32_t>(getpid());
  if (g_slot_pid.load(std::memory_order_acquire) == me) return g_slot.load();
  SharedLock lk(s);
  return self_slot_locked(s);
}

void reap_locked(SharedState* s, bool thorough) {
  const int32_t me = static_cast<int32_t>(getpid());
  for (auto& r : s->pids) {
    if (r.state != kPidLive || r.pid == me) continue;
    if (!pid_dead(r, thorough)) continue;
    // As the real driver does at process teardown: its memory and contexts go back to the device.
    for (int d = 0; d < kMaxDevices; ++d) {
      r.used[d] = 0;
      r.contexts[d] = 0;
    }
    r.state = kPidDead;
  }
}

uint64_t device_used_locked(const SharedState* s, int dev) {
  uint64_t sum = 0;
  for (const auto& r : s->pids) {
    if (r.state == kPidLive) sum += r.used[dev];
  }
  return sum;
}

bool charge_locked(SharedState* s, int dev, uint64_t bytes) {
  int slot = self_slot_locked(s);
  if (slot < 0) return false;
  const uint64_t total = s->dev[dev].total;
  reap_locked(s, false);
  uint64_t used = device_used_locked(s, dev);
  if (bytes > total || used > total - bytes) {
    reap_locked(s, true);  // a killed neighbour may still be a zombie: look closer before OOM
    used = device_used_locked(s, dev);
    if (bytes > total || used > total - bytes) return false;
  }
  s->pids[slot].used[dev] += bytes;
  return true;
}

void uncharge_locked(SharedState* s, int dev, uint64_t bytes) {
  int slot = self_slot_locked(s);
  if (slot < 0) return;
  uint64_t& u = s->pids[slot].used[dev];
  u = u > bytes ? u - bytes : 0;
}

void add_context_locked(SharedState* s, int dev, int delta) {
  int slot = self_slot_locked(s);
  if (slot < 0) return;
  uint32_t& c = s->pids[slot].contexts[dev];
  if (delta < 0 && c < static_cast<uint32_t>(-delta)) {
    c = 0;
  } else {
    c = static_cast<uint32_t>(static_cast<int64_t>(c) + delta);
  }
}

int find_pid_locked(const SharedState* s, int32_t pid) {
  int best = -1;
  for (int i = 0; i < kMaxPids; ++i) {
    const PidRecord& r = s->pids[i];
    if (r.state == kPidFree || r.pid != pid) continue;
    if (r.state == kPidLive) return i;
    if (best < 0 || r.seq > s->pids[best].seq) best = i;
  }
  return best;
}

uint64_t run_on_timeline(SharedState* s, int dev, uint64_t not_before_ns, uint64_t dur_ns) {
  DeviceRecord& d = s->dev[dev];
  const uint64_t now = mono_ns();
  uint64_t old = d.busy_until_ns.load(std::memory_order_acquire);
  uint64_t end = 0;
  // One timeline per device, shared by all processes: the kernel starts when the device is free
  // and its stream's previous work is done. CAS so concurrent launchers never overlap.
  do {
    const uint64_t start = std::max({now, old, not_before_ns});
    end = start + dur_ns;
  } while (!d.busy_until_ns.compare_exchange_weak(old, end, std::memory_order_acq_rel));
  d.busy_total_ns.fetch_add(dur_ns, std::memory_order_relaxed);
  d.kernels.fetch_add(1, std::memory_order_relaxed);
  int slot = self_slot(s);
  if (slot >= 0) {
    s->pids[slot].busy_ns[dev].fetch_add(dur_ns, std::memory_order_relaxed);
    s->pids[slot].kernels[dev].fetch_add(1, std::memory_order_relaxed);
  }
  return end;
}

bool charge(int dev, uint64_t bytes) {
  SharedState* s = state();
  if (s == nullptr) return false;
  SharedLock lk(s);
  return charge_locked(s, dev, bytes);
}

void uncharge(int dev, uint64_t bytes) {
  SharedState* s = state();
  if (s == nullptr || bytes == 0) return;
  SharedLock lk(s);
  uncharge_locked(s, dev, bytes);
}

uint64_t device_used(int dev, bool thorough_reap) {
  SharedState* s = state();
  if (s == nullptr) return 0;
  SharedLock lk(s);
  reap_locked(s, thorough_reap);
  return device_used_locked(s, dev);
}

}  // namespace xpu_fake
