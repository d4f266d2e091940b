// A stand-in for a GPU-busy CUDA application, for the preload tier's compute tests. It uses the
// driver API only (through the simulated libcuda.so.1), reached through one of the paths real
// programs use:
//   direct  symbols bound at link time (built as xpu_compute_probe_direct, linked with -lcuda)
//   dlsym   dlopen("libcuda.so.1") + dlsym of export names
//   gpa     cuGetProcAddress_v2 by base name and version
//   gpa_pt  the same with CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM (every stream-ordered
//           entry point comes back as its _ptsz variant)
//
// usage: xpu_compute_probe PATH MODE [key=value ...]
// modes:
//   init      cuInit only: prints `init=<rc>` (bad settings make it CUDA_ERROR_INVALID_VALUE)
//   busy      each of `threads` threads launches kernels of `blocks` blocks back to back on its
//             own stream, keeping at most `depth` launches queued (an event ring, as frameworks
//             bound their queues), from the start time until the measured window ends
//   requests  one request every `period_us`: `kernels` launches, then cuStreamSynchronize; the
//             latency of each request (first launch to synchronize's return) is recorded
//   capture   a capture phase, then a busy phase: one thread captures `captures` graphs in GLOBAL
//             mode on its stream (`kernels` launches each, sleeping a little between them, then
//             an event record) while another thread launches on another stream; afterwards the
//             capturing thread launches the last captured graph back to back
// options (defaults in brackets):
//   launch=kernel|ex|coop|graph [kernel]  the launch entry point: cuLaunchKernel,
//            cuLaunchKernelEx, cuLaunchCooperativeKernel, or cuGraphLaunch of a graph of one
//            kernel (captured before the start)
//   ptsz=0|1 [1 for gpa_pt, else 0]  use the _ptsz exports; streams are then the per-thread
//            default streams
//   blocks=K [250] (the simulated device runs K x XPU_FAKE_NS_PER_BLOCK ns per kernel)
//   threads=N [1]  depth=Q [8]  kernels=N [2]  period_us=P [10000]  captures=N [40]
//   launcher_depth=Q [64]  (capture mode: the launching thread's ring)
//   start_ns=T     CLOCK_MONOTONIC time at which the work starts (a barrier for co-located
//                  processes); default: now
//   warmup_ms=W [0]  the measured window starts W ms after the start ...
//   ms=T [1000]      ... and lasts T ms; the work stops at its end
//   sample_ms=S [0]  also sample the busy counters every S ms from the start (SAMPLES line)
//   latencies=1      requests: also print every latency (LATENCIES_US line)
//   die_ms=D         right after the first successful launch D ms or more after the start,
//                    SIGKILL itself (it then holds the device, with work queued)
// output: `RESULT key=value ...` on one line (see print_result), `SAMPLES t_us:own_ns:dev_ns
// ...` where own_ns is this process's kernel time issued so far and dev_ns the device's kernel
// time run so far (xpuFakeQuery), and `dying at_ns=<t>` before a die_ms self-kill.
#define __CUDA_API_VERSION_INTERNAL 1
#include <cuda.h>
#include <cudaTypedefs.h>
#include <dlfcn.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "mono_time.hpp"
#include "xpu_fake/fake_api.h"

namespace {

using Nanos = std::uint64_t;

using xpu::test::mono_now;
using xpu::test::sleep_until;

[[noreturn]] void die(const char* what, int rc) {
  std::printf("RESULT fatal=%s rc=%d\n", what, rc);
  std::fflush(stdout);
  std::exit(3);
}

// --- options ------------------------------------------------------------------------------

std::map<std::string, std::string> opts;

std::string opt(const std::string& key, const std::string& def) {
  const auto it = opts.find(key);
  return it == opts.end() ? def : it->second;
}
unsigned long long opt_num(const std::string& key, unsigned long long def) {
  const auto it = opts.find(key);
  return it == opts.end() ? def : std::strtoull(it->second.c_str(), nullptr, 10);
}

// --- the driver API -----------------------------------------------------------------------

struct Api {
  PFN_cuInit_v2000 init;
  PFN_cuDeviceGet_v2000 device_get;
  PFN_cuDevicePrimaryCtxRetain_v7000 retain;
  PFN_cuCtxSetCurrent_v4000 set_current;
  PFN_cuModuleLoadData_v2000 module_load;
  PFN_cuModuleGetFunction_v2000 get_function;
  PFN_cuStreamCreate_v2000 stream_create;
  PFN_cuEventCreate_v2000 event_create;
  PFN_cuEventSynchronize_v2000 event_sync;
  PFN_cuThreadExchangeStreamCaptureMode_v10010 exchange_mode;
  PFN_cuGraphInstantiateWithFlags_v11040 instantiate;
  PFN_cuGraphDestroy_v10000 graph_destroy;
  PFN_cuGraphExecDestroy_v10000 exec_destroy;
  // Stream-ordered: the legacy or the per-thread-default-stream variant.
  PFN_cuStreamSynchronize_v2000 stream_sync;
  PFN_cuEventRecord_v2000 event_record;
  PFN_cuStreamBeginCapture_v10010 begin_capture;
  PFN_cuStreamEndCapture_v10000 end_capture;
  PFN_cuLaunchKernel_v4000 launch_kernel;
  PFN_cuLaunchKernelEx_v11060 launch_ex;
  PFN_cuLaunchCooperativeKernel_v9000 launch_coop;
  PFN_cuGraphLaunch_v10000 graph_launch;
};

Api api;
bool ptsz = false;
std::string path, launch_kind;

void* driver() {
  static void* h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (h == nullptr) {
    std::fprintf(stderr, "compute_probe: cannot dlopen libcuda.so.1: %s\n", dlerror());
    std::exit(90);
  }
  return h;
}

#if defined(XPU_PROBE_DIRECT)
void load_direct() {
  api.init = &cuInit;
  api.device_get = &cuDeviceGet;
  api.retain = &cuDevicePrimaryCtxRetain;
  api.set_current = &cuCtxSetCurrent;
  api.module_load = &cuModuleLoadData;
  api.get_function = &cuModuleGetFunction;
  api.stream_create = &cuStreamCreate;
  api.event_create = &cuEventCreate;
  api.event_sync = &cuEventSynchronize;
  api.exchange_mode = &cuThreadExchangeStreamCaptureMode;
  api.instantiate = &cuGraphInstantiateWithFlags;
  api.graph_destroy = &cuGraphDestroy;
  api.exec_destroy = &cuGraphExecDestroy;
  if (ptsz) {
    api.stream_sync = &cuStreamSynchronize_ptsz;
    api.event_record = &cuEventRecord_ptsz;
    api.begin_capture = &cuStreamBeginCapture_v2_ptsz;
    api.end_capture = &cuStreamEndCapture_ptsz;
    api.launch_kernel = &cuLaunchKernel_ptsz;
    api.launch_ex = &cuLaunchKernelEx_ptsz;
    api.launch_coop = &cuLaunchCooperativeKernel_ptsz;
    api.graph_launch = &cuGraphLaunch_ptsz;
  } else {
    api.stream_sync = &cuStreamSynchronize;
    api.event_record = &cuEventRecord;
    api.begin_capture = &cuStreamBeginCapture_v2;
    api.end_capture = &cuStreamEndCapture;
    api.launch_kernel = &cuLaunchKernel;
    api.launch_ex = &cuLaunchKernelEx;
    api.launch_coop = &cuLaunchCooperativeKernel;
    api.graph_launch = &cuGraphLaunch;
  }
}
#endif

template <class F>
void by_name(F& f, const std::string& export_name) {
  f = reinterpret_cast<F>(dlsym(driver(), export_name.c_str()));
}

template <class F>
void by_gpa(F& f, const char* base, bool per_thread) {
  static auto gpa =
      reinterpret_cast<PFN_cuGetProcAddress_v12000>(dlsym(driver(), "cuGetProcAddress_v2"));
  if (gpa == nullptr) die("no_cuGetProcAddress_v2", 0);
  CUdriverProcAddressQueryResult status{};
  void* p = nullptr;
  const cuuint64_t flags = per_thread ? CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM
                                      : CU_GET_PROC_ADDRESS_LEGACY_STREAM;
  if (gpa(base, &p, 13000, flags, &status) != CUDA_SUCCESS) p = nullptr;
  f = reinterpret_cast<F>(p);
}

void load() {
#if defined(XPU_PROBE_DIRECT)
  if (path == "direct") return load_direct();
#endif
  if (path == "dlsym") {
    const std::string s = ptsz ? "_ptsz" : "";
    by_name(api.init, "cuInit");
    by_name(api.device_get, "cuDeviceGet");
    by_name(api.retain, "cuDevicePrimaryCtxRetain");
    by_name(api.set_current, "cuCtxSetCurrent");
    by_name(api.module_load, "cuModuleLoadData");
    by_name(api.get_function, "cuModuleGetFunction");
    by_name(api.stream_create, "cuStreamCreate");
    by_name(api.event_create, "cuEventCreate");
    by_name(api.event_sync, "cuEventSynchronize");
    by_name(api.exchange_mode, "cuThreadExchangeStreamCaptureMode");
    by_name(api.instantiate, "cuGraphInstantiateWithFlags");
    by_name(api.graph_destroy, "cuGraphDestroy");
    by_name(api.exec_destroy, "cuGraphExecDestroy");
    by_name(api.stream_sync, "cuStreamSynchronize" + s);
    by_name(api.event_record, "cuEventRecord" + s);
    by_name(api.begin_capture, "cuStreamBeginCapture_v2" + s);
    by_name(api.end_capture, "cuStreamEndCapture" + s);
    by_name(api.launch_kernel, "cuLaunchKernel" + s);
    by_name(api.launch_ex, "cuLaunchKernelEx" + s);
    by_name(api.launch_coop, "cuLaunchCooperativeKernel" + s);
    by_name(api.graph_launch, "cuGraphLaunch" + s);
    return;
  }
  if (path != "gpa" && path != "gpa_pt") {
    std::fprintf(stderr, "compute_probe: unknown path %s\n", path.c_str());
    std::exit(2);
  }
  by_gpa(api.init, "cuInit", ptsz);
  by_gpa(api.device_get, "cuDeviceGet", ptsz);
  by_gpa(api.retain, "cuDevicePrimaryCtxRetain", ptsz);
  by_gpa(api.set_current, "cuCtxSetCurrent", ptsz);
  by_gpa(api.module_load, "cuModuleLoadData", ptsz);
  by_gpa(api.get_function, "cuModuleGetFunction", ptsz);
  by_gpa(api.stream_create, "cuStreamCreate", ptsz);
  by_gpa(api.event_create, "cuEventCreate", ptsz);
  by_gpa(api.event_sync, "cuEventSynchronize", ptsz);
  by_gpa(api.exchange_mode, "cuThreadExchangeStreamCaptureMode", ptsz);
  by_gpa(api.instantiate, "cuGraphInstantiateWithFlags", ptsz);
  by_gpa(api.graph_destroy, "cuGraphDestroy", ptsz);
  by_gpa(api.exec_destroy, "cuGraphExecDestroy", ptsz);
  by_gpa(api.stream_sync, "cuStreamSynchronize", ptsz);
  by_gpa(api.event_record, "cuEventRecord", ptsz);
  by_gpa(api.begin_capture, "cuStreamBeginCapture", ptsz);
  by_gpa(api.end_capture, "cuStreamEndCapture", ptsz);
  by_gpa(api.launch_kernel, "cuLaunchKernel", ptsz);
  by_gpa(api.launch_ex, "cuLaunchKernelEx", ptsz);
  by_gpa(api.launch_coop, "cuLaunchCooperativeKernel", ptsz);
  by_gpa(api.graph_launch, "cuGraphLaunch", ptsz);
}

// The export the launches are expected to reach in the driver (xpuFakeCallCount counts it).
std::string launch_export() {
  std::string base = launch_kind == "ex"      ? "cuLaunchKernelEx"
                     : launch_kind == "coop"  ? "cuLaunchCooperativeKernel"
                     : launch_kind == "graph" ? "cuGraphLaunch"
                                              : "cuLaunchKernel";
  return ptsz ? base + "_ptsz" : base;
}

// --- the simulated device's counters ------------------------------------------------------

xpuFakeQuery_t fake_query = nullptr;

unsigned long long query(const char* what) {
  unsigned long long v = 0;
  if (fake_query == nullptr || fake_query(what, 0, &v) != 0) return 0;
  return v;
}

struct Sample {
  Nanos t = 0;
  unsigned long long own = 0;  // this process's kernel time, counted when issued
  unsigned long long dev = 0;  // the device's kernel time that has run by t
};

Sample sample() {
  Sample s;
  s.own = query("pid_busy_ns");
  const unsigned long long issued = query("device_busy_ns");
  const unsigned long long until = query("busy_until_ns");
  s.t = mono_now();
  // Work ahead of t is one contiguous block ending at busy_until (a kernel starts at
  // max(now, busy_until)), so what has run by t is what was issued minus that block.
  const unsigned long long ahead = until > s.t ? until - s.t : 0;
  s.dev = issued > ahead ? issued - ahead : 0;
  return s;
}

// --- work ---------------------------------------------------------------------------------

CUcontext ctx = nullptr;
CUfunction fn = nullptr;
unsigned blocks = 250;
Nanos start_ns = 0;
std::atomic<bool> stop{false};
std::atomic<unsigned long long> launches{0}, errors{0};
std::atomic<int> first_error{0};
Nanos die_at = 0;  // 0: never

void note_error(CUresult rc) {
  if (rc == CUDA_SUCCESS) return;
  errors.fetch_add(1);
  int expected = 0;
  first_error.compare_exchange_strong(expected, static_cast<int>(rc));
}

void check(CUresult rc, const char* what) {
  if (rc != CUDA_SUCCESS) die(what, static_cast<int>(rc));
}

CUstream make_stream(unsigned flags) {
  CUstream s = nullptr;
  check(api.stream_create(&s, flags), "cuStreamCreate");
  return s;
}

// One kernel of `blocks` blocks through the chosen kernel entry point (never a graph launch).
CUresult launch_one_kernel(CUstream stream, const std::string& kind) {
  if (kind == "ex") {
    CUlaunchConfig cfg{};
    cfg.gridDimX = blocks;
    cfg.gridDimY = cfg.gridDimZ = 1;
    cfg.blockDimX = 128;
    cfg.blockDimY = cfg.blockDimZ = 1;
    cfg.hStream = stream;
    return api.launch_ex(&cfg, fn, nullptr, nullptr);
  }
  if (kind == "coop") return api.launch_coop(fn, blocks, 1, 1, 128, 1, 1, 0, stream, nullptr);
  return api.launch_kernel(fn, blocks, 1, 1, 128, 1, 1, 0, stream, nullptr, nullptr);
}

// A graph of one kernel, captured on a stream of its own (THREAD_LOCAL: other threads may be
// setting up meanwhile).
CUgraphExec make_graph(unsigned kernels) {
  CUstream cs = make_stream(CU_STREAM_NON_BLOCKING);
  check(api.begin_capture(cs, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL), "begin_capture(setup)");
  for (unsigned i = 0; i < kernels; ++i) check(launch_one_kernel(cs, "kernel"), "captured_launch");
  CUgraph g = nullptr;
  check(api.end_capture(cs, &g), "end_capture(setup)");
  CUgraphExec e = nullptr;
  check(api.instantiate(&e, g, 0), "instantiate(setup)");
  api.graph_destroy(g);
  return e;
}

// What a thread launches: a kernel through the chosen entry point, or its graph.
struct Launcher {
  CUstream stream = nullptr;
  CUgraphExec exec = nullptr;
  CUresult operator()() const {
    return exec != nullptr ? api.graph_launch(exec, stream)
                           : launch_one_kernel(stream, launch_kind);
  }
};

Launcher make_launcher() {
  Launcher l;
  // With the _ptsz variants, NULL is this thread's per-thread default stream.
  l.stream = ptsz ? nullptr : make_stream(CU_STREAM_NON_BLOCKING);
  if (launch_kind == "graph") l.exec = make_graph(1);
  return l;
}

// A ring of `depth` events bounds the launches in flight, as frameworks bound their queues.
struct Ring {
  std::vector<CUevent> events;
  unsigned long long n = 0;
  explicit Ring(unsigned depth) : events(std::max(depth, 1U)) {
    for (CUevent& e : events) check(api.event_create(&e, CU_EVENT_DISABLE_TIMING), "event_create");
  }
  CUevent& slot() { return events[n % events.size()]; }
  // Before a launch: wait until at most depth-1 launches are in flight.
  void make_room() {
    if (n >= events.size()) note_error(api.event_sync(slot()));
  }
  void launched(CUstream stream) {
    note_error(api.event_record(slot(), stream));
    ++n;
  }
};

void maybe_die() {
  if (die_at != 0 && mono_now() >= die_at) {
    char line[64];
    const int len = std::snprintf(line, sizeof(line), "dying at_ns=%llu\n",
                                  static_cast<unsigned long long>(mono_now()));
    if (len > 0 && ::write(1, line, static_cast<std::size_t>(len)) < 0) std::_Exit(4);
    ::raise(SIGKILL);
  }
}

void busy_thread(std::atomic<int>* ready, unsigned depth, bool first) {
  check(api.set_current(ctx), "cuCtxSetCurrent(thread)");
  const Launcher launch = make_launcher();
  Ring ring(depth);
  ready->fetch_add(1);
  sleep_until(start_ns);
  while (!stop.load(std::memory_order_relaxed)) {
    ring.make_room();
    const CUresult rc = launch();
    note_error(rc);
    if (rc != CUDA_SUCCESS) break;
    launches.fetch_add(1, std::memory_order_relaxed);
    ring.launched(launch.stream);
    if (first) maybe_die();
  }
  note_error(api.stream_sync(launch.stream));
}

// --- requests -----------------------------------------------------------------------------

std::vector<Nanos> latencies;  // of the requests that started inside the measured window

void requests_thread(std::atomic<int>* ready, Nanos window_begin, Nanos window_end) {
  check(api.set_current(ctx), "cuCtxSetCurrent(thread)");
  const Launcher launch = make_launcher();
  const unsigned kernels = static_cast<unsigned>(opt_num("kernels", 2));
  const Nanos period = opt_num("period_us", 10000) * 1000;
  ready->fetch_add(1);
  for (Nanos due = start_ns; due < window_end && !stop.load(); due += period) {
    sleep_until(due);
    const Nanos t0 = mono_now();
    for (unsigned k = 0; k < kernels; ++k) {
      const CUresult rc = launch();
      note_error(rc);
      if (rc == CUDA_SUCCESS) launches.fetch_add(1, std::memory_order_relaxed);
    }
    note_error(api.stream_sync(launch.stream));
    const Nanos t1 = mono_now();
    if (t0 >= window_begin) latencies.push_back(t1 - t0);
  }
}

// --- capture ------------------------------------------------------------------------------

std::mutex capture_mu;  // held by the capturing thread while its capture is open
std::atomic<bool> capture_phase_over{false};
std::atomic<Nanos> capture_phase_end{0};
std::atomic<unsigned long long> captures_ok{0}, captures_failed{0}, instantiate_failed{0},
    launcher_errors{0};
// Launches of the other thread that overlapped an open capture, and those of them that waited in
// the gate (took over 200 us): evidence that the captures overlapped the gate's work.
std::atomic<unsigned long long> launched_in_capture{0}, waited_in_capture{0};
std::atomic<unsigned> capture_seq{0};  // odd while a capture is open
std::atomic<int> first_capture_rc{0};

// Launches on its own stream while the other thread captures. It stays in GLOBAL capture mode
// and makes no prohibited call while a capture is open: it bounds its queue (a ring of
// `launcher_depth` events, deep: under contention the gate bounds it first) only while holding
// capture_mu; when a capture is open it keeps launching (the gate decides when), at most
// `launcher_depth` times, then waits for the capture to end.
void capture_launcher(std::atomic<int>* ready, unsigned depth) {
  check(api.set_current(ctx), "cuCtxSetCurrent(thread)");
  const CUstream stream = make_stream(CU_STREAM_NON_BLOCKING);
  Ring ring(depth);
  ready->fetch_add(1);
  sleep_until(start_ns);
  unsigned unbounded = 0;
  while (!capture_phase_over.load()) {
    if (ring.n >= ring.events.size()) {
      std::unique_lock<std::mutex> lk(capture_mu, std::try_to_lock);
      if (!lk.owns_lock() && ++unbounded > depth) lk.lock();
      if (lk.owns_lock()) {
        if (api.event_sync(ring.slot()) != CUDA_SUCCESS) launcher_errors.fetch_add(1);
        unbounded = 0;
      }
    }
    const unsigned seq0 = capture_seq.load();
    const Nanos t0 = mono_now();
    const CUresult rc = launch_one_kernel(stream, "kernel");
    if ((seq0 & 1U) != 0 || capture_seq.load() != seq0) {
      launched_in_capture.fetch_add(1);
      if (mono_now() - t0 > 200'000) waited_in_capture.fetch_add(1);
    }
    if (rc != CUDA_SUCCESS) {
      launcher_errors.fetch_add(1);
      note_error(rc);
      continue;
    }
    launches.fetch_add(1, std::memory_order_relaxed);
    if (api.event_record(ring.slot(), stream) != CUDA_SUCCESS) launcher_errors.fetch_add(1);
    ++ring.n;
  }
  std::lock_guard<std::mutex> lk(capture_mu);
  if (api.stream_sync(stream) != CUDA_SUCCESS) launcher_errors.fetch_add(1);
}

void capture_thread(std::atomic<int>* ready, unsigned depth) {
  check(api.set_current(ctx), "cuCtxSetCurrent(thread)");
  const CUstream stream = make_stream(0);  // a blocking stream: the strictest case
  const unsigned kernels = static_cast<unsigned>(opt_num("kernels", 2));
  const unsigned long long captures = opt_num("captures", 40);
  std::minstd_rand rng(static_cast<unsigned>(::getpid()));
  std::uniform_int_distribution<unsigned> pause_us(0, 1500);
  CUevent marker = nullptr;
  check(api.event_create(&marker, 0), "event_create");
  ready->fetch_add(1);
  sleep_until(start_ns);
  CUgraphExec exec = nullptr;
  for (unsigned long long c = 0; c < captures; ++c) {
    CUgraph graph = nullptr;
    CUresult rc = CUDA_SUCCESS;
    {
      std::lock_guard<std::mutex> lk(capture_mu);
      rc = api.begin_capture(stream, CU_STREAM_CAPTURE_MODE_GLOBAL);
      capture_seq.fetch_add(1);
      for (unsigned k = 0; k < kernels && rc == CUDA_SUCCESS; ++k) {
        rc =
            launch_one_kernel(stream, launch_kind == "graph" ? std::string("kernel") : launch_kind);
        // Keep the capture open a while, so that the other thread's gated launches (and the
        // watcher) run while it is.
        ::usleep(pause_us(rng));
      }
      if (rc == CUDA_SUCCESS) rc = api.event_record(marker, stream);
      // End the capture whatever happened, so that it never stays open.
      const CUresult end_rc = api.end_capture(stream, &graph);
      capture_seq.fetch_add(1);
      if (rc == CUDA_SUCCESS) rc = end_rc;
    }
    if (rc != CUDA_SUCCESS || graph == nullptr) {
      captures_failed.fetch_add(1);
      int expected = 0;
      first_capture_rc.compare_exchange_strong(expected,
                                               rc != CUDA_SUCCESS ? static_cast<int>(rc) : -1);
      continue;
    }
    captures_ok.fetch_add(1);
    CUgraphExec e = nullptr;
    if (api.instantiate(&e, graph, 0) != CUDA_SUCCESS || e == nullptr) {
      instantiate_failed.fetch_add(1);
    } else {
      if (exec != nullptr) api.exec_destroy(exec);
      exec = e;
    }
    api.graph_destroy(graph);
    ::usleep(pause_us(rng));
  }
  capture_phase_end.store(mono_now());
  capture_phase_over.store(true);
  if (exec == nullptr) return;
  // The captured graph now runs back to back: it is gated like any launch.
  Ring ring(depth);
  while (!stop.load(std::memory_order_relaxed)) {
    ring.make_room();
    const CUresult rc = api.graph_launch(exec, stream);
    note_error(rc);
    if (rc != CUDA_SUCCESS) break;
    launches.fetch_add(1, std::memory_order_relaxed);
    ring.launched(stream);
  }
  note_error(api.stream_sync(stream));
}

// --- main ---------------------------------------------------------------------------------

unsigned long long percentile(std::vector<Nanos> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t i = std::min(v.size() - 1, static_cast<std::size_t>(p * (v.size() - 1) + 0.5));
  return v[i];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: compute_probe direct|dlsym|gpa|gpa_pt MODE [key=value ...]\n");
    return 2;
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  path = argv[1];
  const std::string mode = argv[2];
  for (int i = 3; i < argc; ++i) {
    const std::string a = argv[i];
    const auto eq = a.find('=');
    if (eq == std::string::npos) {
      std::fprintf(stderr, "compute_probe: bad option %s\n", a.c_str());
      return 2;
    }
    opts[a.substr(0, eq)] = a.substr(eq + 1);
  }
  ptsz = path == "gpa_pt" || opt("ptsz", "0") == "1";
  launch_kind = opt("launch", "kernel");
  blocks = static_cast<unsigned>(opt_num("blocks", 250));
  load();
  if (api.init == nullptr || api.launch_kernel == nullptr || api.launch_ex == nullptr ||
      api.launch_coop == nullptr || api.graph_launch == nullptr || api.event_record == nullptr ||
      api.stream_sync == nullptr || api.begin_capture == nullptr) {
    std::printf("RESULT fatal=load\n");
    return 94;
  }
  fake_query = reinterpret_cast<xpuFakeQuery_t>(dlsym(driver(), "xpuFakeQuery"));
  auto call_count = reinterpret_cast<xpuFakeCallCount_t>(dlsym(driver(), "xpuFakeCallCount"));

  const CUresult init_rc = api.init(0);
  std::printf("init=%d\n", static_cast<int>(init_rc));
  if (mode == "init" || init_rc != CUDA_SUCCESS) return init_rc == CUDA_SUCCESS ? 0 : 1;

  CUdevice dev = 0;
  check(api.device_get(&dev, 0), "cuDeviceGet");
  check(api.retain(&ctx, dev), "cuDevicePrimaryCtxRetain");
  check(api.set_current(ctx), "cuCtxSetCurrent");
  CUmodule module = nullptr;
  static const char kImage[] = "simulated";  // the simulated driver accepts any image
  check(api.module_load(&module, kImage), "cuModuleLoadData");
  check(api.get_function(&fn, module, "spin"), "cuModuleGetFunction");

  start_ns = opt_num("start_ns", 0);
  if (start_ns == 0) start_ns = mono_now();
  const Nanos window_begin = start_ns + opt_num("warmup_ms", 0) * 1'000'000;
  const Nanos window_len = opt_num("ms", 1000) * 1'000'000;
  Nanos window_end = window_begin + window_len;
  const Nanos sample_every = opt_num("sample_ms", 0) * 1'000'000;
  if (opts.count("die_ms") != 0) die_at = start_ns + opt_num("die_ms", 0) * 1'000'000;
  const unsigned depth = static_cast<unsigned>(opt_num("depth", 8));
  const unsigned threads =
      static_cast<unsigned>(std::max<unsigned long long>(opt_num("threads", 1), 1));

  std::atomic<int> ready{0};
  int expected_ready = 0;
  std::vector<std::thread> workers;
  if (mode == "busy") {
    for (unsigned i = 0; i < threads; ++i) workers.emplace_back(busy_thread, &ready, depth, i == 0);
    expected_ready = static_cast<int>(threads);
  } else if (mode == "requests") {
    workers.emplace_back(requests_thread, &ready, window_begin, window_end);
    expected_ready = 1;
  } else if (mode == "capture") {
    workers.emplace_back(capture_launcher, &ready,
                         static_cast<unsigned>(opt_num("launcher_depth", 64)));
    workers.emplace_back(capture_thread, &ready, depth);
    expected_ready = 2;
  } else {
    std::fprintf(stderr, "compute_probe: unknown mode %s\n", mode.c_str());
    return 2;
  }
  while (ready.load() < expected_ready) ::usleep(200);
  const Nanos set_up = mono_now();
  const Nanos late = set_up > start_ns ? set_up - start_ns : 0;

  std::vector<Sample> samples;
  auto sample_until = [&](Nanos until) {
    if (sample_every == 0) return;
    for (Nanos t = start_ns + sample_every * (samples.size() + 1); t < until; t += sample_every) {
      if (t <= mono_now()) continue;
      sleep_until(t);
      samples.push_back(sample());
    }
  };
  sample_until(window_begin);
  sleep_until(window_begin);
  Nanos begin = window_begin;
  if (mode == "capture") {
    // The measured window covers the graph launches only.
    while (!capture_phase_over.load()) ::usleep(1000);
    const Nanos phase_end = capture_phase_end.load();
    if (phase_end + 50'000'000 > begin) {
      begin = phase_end + 50'000'000;
      window_end = begin + window_len;
      sleep_until(begin);
    }
  }
  const Sample a = sample();
  sample_until(window_end);
  sleep_until(window_end);
  const Sample b = sample();
  stop.store(true);
  for (std::thread& t : workers) t.join();

  const std::string exp = launch_export();
  std::printf(
      "RESULT mode=%s path=%s launch=%s ptsz=%d export=%s export_calls=%llu pid=%d start_ns=%llu "
      "late_ns=%llu win_begin_ns=%llu win_ns=%llu own_ns=%llu dev_ns=%llu launches=%llu "
      "errors=%llu first_error=%d end_ns=%llu",
      mode.c_str(), path.c_str(), launch_kind.c_str(), ptsz ? 1 : 0, exp.c_str(),
      call_count != nullptr ? call_count(exp.c_str()) : 0ULL, static_cast<int>(::getpid()),
      static_cast<unsigned long long>(start_ns), static_cast<unsigned long long>(late),
      static_cast<unsigned long long>(a.t), static_cast<unsigned long long>(b.t - a.t),
      b.own - a.own, b.dev - a.dev, launches.load(), errors.load(), first_error.load(),
      static_cast<unsigned long long>(mono_now()));
  if (mode == "requests") {
    std::printf(" requests=%zu p50_us=%llu p99_us=%llu max_us=%llu", latencies.size(),
                percentile(latencies, 0.50) / 1000, percentile(latencies, 0.99) / 1000,
                percentile(latencies, 1.0) / 1000);
  }
  if (mode == "capture") {
    std::printf(
        " captures_ok=%llu captures_failed=%llu first_capture_rc=%d instantiate_failed=%llu "
        "launcher_errors=%llu launched_in_capture=%llu waited_in_capture=%llu "
        "capture_phase_ns=%llu",
        captures_ok.load(), captures_failed.load(), first_capture_rc.load(),
        instantiate_failed.load(), launcher_errors.load(), launched_in_capture.load(),
        waited_in_capture.load(),
        static_cast<unsigned long long>(capture_phase_end.load() - start_ns));
  }
  std::printf("\n");
  if (mode == "requests" && opt("latencies", "0") == "1") {
    std::string line = "LATENCIES_US";
    for (Nanos l : latencies) line += " " + std::to_string(l / 1000);
    std::printf("%s\n", line.c_str());
  }
  if (!samples.empty()) {
    std::string line = "SAMPLES";
    for (const Sample& s : samples) {
      line += " " + std::to_string((s.t - start_ns) / 1000) + ":" + std::to_string(s.own) + ":" +
              std::to_string(s.dev);
    }
    std::printf("%s\n", line.c_str());
  }
  return 0;
}
