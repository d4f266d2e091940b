// compute_loop: a compute-bound load of known shape, for the time-slice benchmarks
// (bench/README.md, bench/run_compute.sh).
//
// Every kernel fills all SMs (one full wave of resident blocks, a multiple of the SM count) with
// FMA work for --kernel-us microseconds, timed on the device with %globaltimer, so its length does
// not depend on clocks. "Kernels per second" alone is the solo throughput; next to others, its
// ratio to solo is the part of the GPU this process got.
//
// Timeline (wall clock, CLOCK_REALTIME, shared by all co-located processes):
//   init, one warm-up kernel, clock calibration -> touch --ready-file -> wait for the start
//   instant S (--start-at EPOCH, or the number written into --go-file) -> active from S to
//   S + warmup + window + tail; only kernels that *complete* inside [S + warmup, S + warmup +
//   window) are counted. Every process started with the same S measures the same wall window.
// Completion instants come from timing events recorded after each kernel, read on the GPU's clock
// (cudaEventElapsedTime against a reference event whose wall time was calibrated before the
// start), so the count at the window edges is exact however late the host looks at the events.
// At most --depth kernels are in flight.
//
// Modes:
//   throughput (default)  back to back; RESULT kernels, kernels_per_s, busy_fraction
//                         (= kernels x kernel time / window; ~0.99 alone on an idle card)
//   latency               one kernel every 1/--rate s on an open-loop schedule (a late kernel does
//                         not delay the schedule); latency = completion - scheduled time, for the
//                         kernels scheduled inside the window; RESULT p50/p99/max
//   idle                  initialises CUDA (and joins the shim's scheduler under the shim), then
//                         launches nothing during the active span: the "other process is idle"
//                         partner of the work-conservation scenario
// Kernels go through cudart (<<<>>>), i.e. through the cuLaunchKernel pointer cudart got from
// cuGetProcAddress, the path PyTorch and most CUDA programs take.
//
// Usage: compute_loop [--mode throughput|latency|idle] [--kernel-us 1000] [--depth 4]
//                     [--warmup 1] [--window 6] [--tail 0.5] [--seconds W (= --window W)]
//                     [--rate 50] [--ready-file PATH] [--go-file PATH] [--start-at EPOCH]
//                     [--go-timeout 60]
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "gpu_check.hpp"

namespace {

__device__ __forceinline__ unsigned long long global_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// Spins on dependent FMAs until `ns` have passed; the result is stored only if it has an impossible
// value, so the compiler keeps the work but memory traffic stays nil.
__global__ void burn(unsigned long long ns, float* sink) {
  const unsigned long long start = global_ns();
  float a = static_cast<float>(threadIdx.x), b = 0.9999f;
  while (global_ns() - start < ns) {
#pragma unroll 64
    for (int i = 0; i < 256; ++i) a = fmaf(a, b, 0.0001f);
  }
  if (a == -1.0f) *sink = a;
}

struct Grid {
  int blocks = 0;
  int threads = 256;
  int sms = 0;
};

Grid full_wave() {
  Grid g;
  int per_sm = 0;
  (void)cudaDeviceGetAttribute(&g.sms, cudaDevAttrMultiProcessorCount, 0);
  (void)cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, burn, g.threads, 0);
  g.blocks = std::max(1, g.sms * std::max(1, per_sm));
  return g;
}

// CLOCK_REALTIME in seconds: the clock all co-located processes agree on.
double wall_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Sleeps until wall time `t`: coarse sleep, then a short spin for the last 2 ms.
void sleep_until_wall(double t) {
  for (;;) {
    const double left = t - wall_now();
    if (left <= 0) return;
    if (left > 0.002) {
      std::this_thread::sleep_for(std::chrono::duration<double>(left - 0.002));
    }
  }
}

struct Options {
  std::string mode;
  unsigned long long kernel_ns = 0;
  int depth = 4;
  double warmup = 1.0, window = 6.0, tail = 0.5, rate = 50.0, start_at = 0.0, go_timeout = 60.0;
  std::string ready_file, go_file;
};

// Touches the ready file, then returns the start instant: --start-at, else the number in the go
// file once it appears, else now. A negative value means the go file never came.
double start_instant(const Options& o) {
  if (!o.ready_file.empty()) {
    if (FILE* f = std::fopen(o.ready_file.c_str(), "w")) std::fclose(f);
  }
  if (o.start_at > 0) return o.start_at;
  if (o.go_file.empty()) return wall_now();
  const double deadline = wall_now() + o.go_timeout;
  while (wall_now() < deadline) {
    if (FILE* f = std::fopen(o.go_file.c_str(), "r")) {
      double s = 0;
      const int n = std::fscanf(f, "%lf", &s);
      std::fclose(f);
      if (n == 1 && s > 0) return s;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return -1.0;
}

// Maps GPU event timestamps to wall time: a reference event recorded on an idle stream, its wall
// instant taken as the midpoint of record..synchronize; best (narrowest) of several tries.
struct GpuClock {
  cudaEvent_t ref = nullptr;
  double wall = 0;
  double uncertainty = 1e9;  // half the narrowest record..synchronize interval, seconds

  void calibrate() {
    for (int i = 0; i < 7; ++i) {
      cudaEvent_t e = nullptr;
      if (cudaEventCreate(&e) != cudaSuccess) return;
      const double h0 = wall_now();
      (void)cudaEventRecord(e, nullptr);
      (void)cudaEventSynchronize(e);
      const double h1 = wall_now();
      if ((h1 - h0) / 2 < uncertainty) {
        if (ref != nullptr) (void)cudaEventDestroy(ref);
        ref = e;
        wall = (h0 + h1) / 2;
        uncertainty = (h1 - h0) / 2;
      } else {
        (void)cudaEventDestroy(e);
      }
    }
  }
  // Wall instant of a completed timing event.
  double at(cudaEvent_t e) const {
    float ms = 0;
    if (cudaEventElapsedTime(&ms, ref, e) != cudaSuccess) return -1.0;
    return wall + static_cast<double>(ms) * 1e-3;
  }
};

const char* first_error(cudaError_t& seen, cudaError_t now) {
  if (seen == cudaSuccess && now != cudaSuccess) seen = now;
  return cudaGetErrorName(seen);
}

int throughput(const Options& o, const Grid& g, const GpuClock& clk, float* sink, double start) {
  const std::size_t depth = static_cast<std::size_t>(std::max(1, o.depth));
  std::vector<cudaEvent_t> ring(depth);
  for (auto& e : ring) (void)cudaEventCreate(&e);  // timing events
  const double m0 = start + o.warmup, m1 = m0 + o.window, end = m1 + o.tail;
  long launched = 0, counted = 0, before = 0, after = 0, unreadable = 0;
  double first = 0, last = 0;
  cudaError_t err = cudaSuccess;
  std::size_t head = 0, inflight = 0;

  const auto retire = [&] {
    cudaEvent_t e = ring[head];
    first_error(err, cudaEventSynchronize(e));
    const double t = clk.at(e);
    if (t < 0) {
      ++unreadable;
    } else if (t < m0) {
      ++before;
    } else if (t < m1) {
      if (counted == 0) first = t;
      last = t;
      ++counted;
    } else {
      ++after;
    }
    head = (head + 1) % depth;
    --inflight;
  };

  sleep_until_wall(start);
  while (err == cudaSuccess) {
    if (inflight == depth) retire();
    if (wall_now() >= end) break;
    burn<<<g.blocks, g.threads>>>(o.kernel_ns, sink);
    first_error(err, cudaGetLastError());
    first_error(err, cudaEventRecord(ring[(head + inflight) % depth], nullptr));
    ++inflight;
    ++launched;
  }
  while (inflight > 0) retire();
  first_error(err, cudaDeviceSynchronize());
  for (auto& e : ring) (void)cudaEventDestroy(e);
  const double kernel_s = static_cast<double>(o.kernel_ns) * 1e-9;
  std::printf(
      "RESULT mode=throughput kernels=%ld window_s=%.3f kernels_per_s=%.3f busy_fraction=%.4f "
      "launched=%ld before_window=%ld after_window=%ld first_in_window_s=%.4f "
      "last_in_window_s=%.4f unreadable=%ld kernel_us=%.0f grid=%d block=%d sms=%d depth=%zu "
      "start=%.3f calib_us=%.1f error=%s\n",
      counted, o.window, static_cast<double>(counted) / o.window,
      static_cast<double>(counted) * kernel_s / o.window, launched, before, after,
      counted ? first - m0 : 0.0, counted ? last - m0 : 0.0, unreadable,
      static_cast<double>(o.kernel_ns) / 1000.0, g.blocks, g.threads, g.sms, depth, start,
      clk.uncertainty * 1e6, cudaGetErrorName(err));
  return err == cudaSuccess && unreadable == 0 ? 0 : 1;
}

int latency(const Options& o, const Grid& g, float* sink, double start) {
  std::vector<double> lat_ms;
  const double m0 = start + o.warmup, m1 = m0 + o.window, end = m1 + o.tail;
  const double period = 1.0 / std::max(o.rate, 0.001);
  long late = 0;
  cudaError_t err = cudaSuccess;
  for (long i = 0; err == cudaSuccess; ++i) {
    const double due = start + period * static_cast<double>(i);
    if (due >= end) break;
    if (wall_now() < due) {
      sleep_until_wall(due);
    } else if (i > 0 && due >= m0 && due < m1) {
      ++late;  // the previous kernel finished after this one's slot: queueing shows in its latency
    }
    burn<<<g.blocks, g.threads>>>(o.kernel_ns, sink);
    first_error(err, cudaGetLastError());
    first_error(err, cudaStreamSynchronize(nullptr));
    if (due >= m0 && due < m1) lat_ms.push_back((wall_now() - due) * 1e3);
  }
  std::sort(lat_ms.begin(), lat_ms.end());
  const auto pct = [&](double p) {
    return lat_ms.empty()
               ? 0.0
               : lat_ms[std::min(lat_ms.size() - 1,
                                 static_cast<std::size_t>(p * static_cast<double>(lat_ms.size())))];
  };
  std::printf(
      "RESULT mode=latency kernels=%zu window_s=%.3f rate=%.1f late=%ld p50_ms=%.3f p99_ms=%.3f "
      "max_ms=%.3f kernel_us=%.0f start=%.3f error=%s\n",
      lat_ms.size(), o.window, o.rate, late, pct(0.5), pct(0.99),
      lat_ms.empty() ? 0.0 : lat_ms.back(), static_cast<double>(o.kernel_ns) / 1000.0, start,
      cudaGetErrorName(err));
  return err == cudaSuccess ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const xpu::gputest::Args args(argc, argv);
  Options o;
  o.mode = args.value("--mode", "throughput");
  o.kernel_ns = 1000ull * static_cast<unsigned long long>(args.integer("--kernel-us", 1000));
  o.depth = args.integer("--depth", 4);
  o.warmup = std::atof(args.value("--warmup", "1"));
  o.window = std::atof(args.value("--window", args.value("--seconds", "6")));
  o.tail = std::atof(args.value("--tail", "0.5"));
  o.rate = std::atof(args.value("--rate", "50"));
  o.start_at = std::atof(args.value("--start-at", "0"));
  o.go_timeout = std::atof(args.value("--go-timeout", "60"));
  o.ready_file = args.value("--ready-file", "");
  o.go_file = args.value("--go-file", "");
  if ((o.mode != "throughput" && o.mode != "latency" && o.mode != "idle") || o.window <= 0 ||
      o.warmup < 0 || o.tail < 0 || o.kernel_ns == 0) {
    std::fprintf(stderr, "compute_loop: bad arguments (see the header of compute_loop.cu)\n");
    return 2;
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::printf("INFO pid=%d\n", static_cast<int>(getpid()));

  float* sink = nullptr;
  if (cudaMalloc(&sink, sizeof(float)) != cudaSuccess) {
    std::printf("RESULT mode=%s error=cuda_init_failed\n", o.mode.c_str());
    return 1;
  }
  const Grid g = full_wave();
  burn<<<g.blocks, g.threads>>>(o.kernel_ns, sink);  // warm-up: module load, clocks up
  if (cudaDeviceSynchronize() != cudaSuccess) {
    std::printf("RESULT mode=%s error=warmup_failed\n", o.mode.c_str());
    return 1;
  }
  GpuClock clk;
  clk.calibrate();
  if (clk.ref == nullptr) {
    std::printf("RESULT mode=%s error=calibration_failed\n", o.mode.c_str());
    return 1;
  }

  const double start = start_instant(o);
  if (start < 0) {
    std::printf("RESULT mode=%s error=no_start_signal\n", o.mode.c_str());
    return 1;
  }
  int rc = 0;
  if (o.mode == "throughput") {
    rc = throughput(o, g, clk, sink, start);
  } else if (o.mode == "latency") {
    rc = latency(o, g, sink, start);
  } else {
    sleep_until_wall(start + o.warmup + o.window + o.tail);
    std::printf("RESULT mode=idle window_s=%.3f start=%.3f error=cudaSuccess\n", o.window, start);
  }
  (void)cudaEventDestroy(clk.ref);
  (void)cudaFree(sink);
  return rc;
}
