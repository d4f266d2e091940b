// compute_loop: a compute-bound load of known shape, for the time-slice benchmarks
// (bench/README.md, bench/run_compute.sh).
//
// Every kernel fills all SMs (one full wave of resident blocks, a multiple of the SM count) and
// does a FIXED AMOUNT OF WORK: each thread runs --iters iterations of independent dependent-FMA
// chains and writes its result to memory. A kernel that is preempted (the hardware time-slices the
// contexts of processes sharing the GPU without the shim) therefore takes longer instead of
// "finishing" on wall time, and kernels per second measure work done. "Kernels per second" alone
// is the solo throughput; next to others, its ratio to solo is the part of the GPU this process
// got.
//
// Calibration: --calibrate measures, on an otherwise idle GPU, the iteration count for which one
// kernel takes --kernel-us microseconds back to back, prints
//   CALIBRATION iters=N kernel_us=T target_us=... min_us=... max_us=... error=cudaSuccess
// and exits. run_compute.sh runs it once and passes --iters N --kernel-us T to every process, so
// that all of them run the identical kernel (T, the measured time, is only used for busy_fraction).
// Without --iters a process calibrates itself at start-up, before the ready file (standalone use).
//
// Timeline (wall clock, CLOCK_REALTIME, shared by all co-located processes):
//   init, warm-up kernels, clock calibration -> touch --ready-file -> wait for the start
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
// Usage: compute_loop --calibrate [--kernel-us 1000]
//        compute_loop [--mode throughput|latency|idle] [--iters N] [--kernel-us 1000] [--depth 4]
//                     [--warmup 1] [--window 6] [--tail 0.5] [--seconds W (= --window W)]
//                     [--rate 50] [--ready-file PATH] [--go-file PATH] [--start-at EPOCH]
//                     [--go-timeout 60]
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "gpu_check.hpp"

namespace {

// Fixed work: `iters` iterations of kFmaPerIter FMAs per thread, in kChains independent dependent
// chains (enough independent work per warp to keep the FMA pipes full at full occupancy). Every
// thread stores its result, so the compiler keeps all of it; 4 bytes per thread per kernel (~1 MiB
// per ~1 ms kernel on an H100) is negligible memory traffic.
constexpr int kChains = 4;
constexpr int kUnroll = 16;
constexpr int kFmaPerIter = kChains * kUnroll;

__global__ void work(int iters, float mul, float add, float* out) {
  float x[kChains];
#pragma unroll
  for (int c = 0; c < kChains; ++c) x[c] = 1e-3f * static_cast<float>(threadIdx.x + 64 * c);
  for (int i = 0; i < iters; ++i) {
#pragma unroll
    for (int j = 0; j < kUnroll; ++j) {
#pragma unroll
      for (int c = 0; c < kChains; ++c) x[c] = fmaf(x[c], mul, add);
    }
  }
  float sum = 0.0f;
#pragma unroll
  for (int c = 0; c < kChains; ++c) sum += x[c];
  out[static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x] = sum;
}

// Kernel arguments: runtime values, so that nothing about the loop is known at compile time.
constexpr float kMul = 0.9999f;
constexpr float kAdd = 1e-4f;

struct Grid {
  int blocks = 0;
  int threads = 256;
  int sms = 0;
};

Grid full_wave() {
  Grid g;
  int per_sm = 0;
  (void)cudaDeviceGetAttribute(&g.sms, cudaDevAttrMultiProcessorCount, 0);
  (void)cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, work, g.threads, 0);
  g.blocks = std::max(1, g.sms * std::max(1, per_sm));
  return g;
}

void launch(const Grid& g, int iters, float* out) {
  work<<<g.blocks, g.threads>>>(iters, kMul, kAdd, out);
}

// GPU time per kernel (us) of `n` kernels launched back to back, between two events; < 0 on error.
double per_kernel_us(const Grid& g, int iters, float* out, int n) {
  cudaEvent_t e0 = nullptr, e1 = nullptr;
  if (cudaEventCreate(&e0) != cudaSuccess || cudaEventCreate(&e1) != cudaSuccess) return -1.0;
  float ms = -1.0f;
  (void)cudaEventRecord(e0, nullptr);
  for (int i = 0; i < n; ++i) launch(g, iters, out);
  (void)cudaEventRecord(e1, nullptr);
  if (cudaGetLastError() != cudaSuccess || cudaEventSynchronize(e1) != cudaSuccess ||
      cudaEventElapsedTime(&ms, e0, e1) != cudaSuccess) {
    ms = -1.0f;
  }
  (void)cudaEventDestroy(e0);
  (void)cudaEventDestroy(e1);
  return ms < 0 ? -1.0 : static_cast<double>(ms) * 1e3 / n;
}

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

struct Calibration {
  int iters = 0;
  double kernel_us = 0, min_us = 0, max_us = 0;
  cudaError_t error = cudaSuccess;
};

// The iteration count for which one kernel takes `target_us` back to back (the GPU is assumed
// otherwise idle): a coarse estimate, ~0.3 s of warm-up at about the right length (clocks up), two
// refinements of 100 kernels each, then the median of 5 batches of 50 kernels at the final count.
Calibration calibrate(const Grid& g, float* out, double target_us) {
  Calibration c;
  const auto fail = [&c] {
    c.error = cudaGetLastError();
    if (c.error == cudaSuccess) c.error = cudaErrorUnknown;
    return c;
  };
  const auto rescale = [target_us](int iters, double us) {
    const double next = static_cast<double>(iters) * target_us / us;
    return static_cast<int>(std::clamp(next + 0.5, 1.0, 2.0e9));
  };
  int iters = 64;
  for (int round = 0; round < 6; ++round) {  // coarse: until a kernel is >= 1/8 of the target
    const double us = per_kernel_us(g, iters, out, 5);
    if (us <= 0) return fail();
    if (us >= target_us / 8 || iters >= (1 << 28)) {
      iters = rescale(iters, us);
      break;
    }
    iters *= 16;
  }
  const int warm_n = std::max(1, static_cast<int>(3e5 / target_us));
  if (per_kernel_us(g, iters, out, warm_n) <= 0) return fail();
  for (int round = 0; round < 2; ++round) {
    const double us = per_kernel_us(g, iters, out, 100);
    if (us <= 0) return fail();
    iters = rescale(iters, us);
  }
  std::vector<double> t;
  for (int i = 0; i < 5; ++i) {
    const double us = per_kernel_us(g, iters, out, 50);
    if (us <= 0) return fail();
    t.push_back(us);
  }
  c.iters = iters;
  c.kernel_us = median_of(t);
  c.min_us = *std::min_element(t.begin(), t.end());
  c.max_us = *std::max_element(t.begin(), t.end());
  return c;
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
  double kernel_us = 1000;  // target of the calibration; with --iters, the kernel's measured time
  int iters = 0;            // 0: calibrate at start-up
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

int throughput(const Options& o, const Grid& g, const GpuClock& clk, float* out, double start) {
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
    launch(g, o.iters, out);
    first_error(err, cudaGetLastError());
    first_error(err, cudaEventRecord(ring[(head + inflight) % depth], nullptr));
    ++inflight;
    ++launched;
  }
  while (inflight > 0) retire();
  first_error(err, cudaDeviceSynchronize());
  for (auto& e : ring) (void)cudaEventDestroy(e);
  const double kernel_s = o.kernel_us * 1e-6;
  std::printf(
      "RESULT mode=throughput kernels=%ld window_s=%.3f kernels_per_s=%.3f busy_fraction=%.4f "
      "launched=%ld before_window=%ld after_window=%ld first_in_window_s=%.4f "
      "last_in_window_s=%.4f unreadable=%ld kernel_us=%.1f iters=%d grid=%d block=%d sms=%d "
      "depth=%zu start=%.3f calib_us=%.1f error=%s\n",
      counted, o.window, static_cast<double>(counted) / o.window,
      static_cast<double>(counted) * kernel_s / o.window, launched, before, after,
      counted ? first - m0 : 0.0, counted ? last - m0 : 0.0, unreadable, o.kernel_us, o.iters,
      g.blocks, g.threads, g.sms, depth, start, clk.uncertainty * 1e6, cudaGetErrorName(err));
  return err == cudaSuccess && unreadable == 0 ? 0 : 1;
}

int latency(const Options& o, const Grid& g, float* out, double start) {
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
    launch(g, o.iters, out);
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
      "max_ms=%.3f kernel_us=%.1f iters=%d start=%.3f error=%s\n",
      lat_ms.size(), o.window, o.rate, late, pct(0.5), pct(0.99),
      lat_ms.empty() ? 0.0 : lat_ms.back(), o.kernel_us, o.iters, start, cudaGetErrorName(err));
  return err == cudaSuccess ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const xpu::gputest::Args args(argc, argv);
  Options o;
  const bool calibrate_only = args.flag("--calibrate");
  o.mode = calibrate_only ? "calibrate" : args.value("--mode", "throughput");
  o.kernel_us = std::atof(args.value("--kernel-us", "1000"));
  o.iters = args.integer("--iters", 0);
  o.depth = args.integer("--depth", 4);
  o.warmup = std::atof(args.value("--warmup", "1"));
  o.window = std::atof(args.value("--window", args.value("--seconds", "6")));
  o.tail = std::atof(args.value("--tail", "0.5"));
  o.rate = std::atof(args.value("--rate", "50"));
  o.start_at = std::atof(args.value("--start-at", "0"));
  o.go_timeout = std::atof(args.value("--go-timeout", "60"));
  o.ready_file = args.value("--ready-file", "");
  o.go_file = args.value("--go-file", "");
  if ((o.mode != "throughput" && o.mode != "latency" && o.mode != "idle" &&
       o.mode != "calibrate") ||
      o.window <= 0 || o.warmup < 0 || o.tail < 0 || !(o.kernel_us > 0) || o.iters < 0) {
    std::fprintf(stderr, "compute_loop: bad arguments (see the header of compute_loop.cu)\n");
    return 2;
  }
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  std::printf("INFO pid=%d\n", static_cast<int>(getpid()));

  const Grid g = full_wave();
  float* out = nullptr;
  if (cudaMalloc(&out, sizeof(float) * static_cast<std::size_t>(g.blocks) * g.threads) !=
      cudaSuccess) {
    std::printf("%s mode=%s error=cuda_init_failed\n", calibrate_only ? "CALIBRATION" : "RESULT",
                o.mode.c_str());
    return 1;
  }
  if (calibrate_only || o.iters == 0) {
    const Calibration c = calibrate(g, out, o.kernel_us);
    std::printf(
        "%s iters=%d kernel_us=%.1f target_us=%.1f min_us=%.1f max_us=%.1f fma_per_thread=%lld "
        "grid=%d block=%d sms=%d error=%s\n",
        calibrate_only ? "CALIBRATION" : "INFO calibration", c.iters, c.kernel_us, o.kernel_us,
        c.min_us, c.max_us, static_cast<long long>(c.iters) * kFmaPerIter, g.blocks, g.threads,
        g.sms, cudaGetErrorName(c.error));
    if (calibrate_only || c.error != cudaSuccess) {
      if (c.error != cudaSuccess && !calibrate_only) {
        std::printf("RESULT mode=%s error=calibration_failed\n", o.mode.c_str());
      }
      (void)cudaFree(out);
      return c.error == cudaSuccess ? 0 : 1;
    }
    o.iters = c.iters;
    o.kernel_us = c.kernel_us;
  }
  // Warm-up (module load, clocks up): a few kernels, timed only for the log (other processes of
  // the scenario may be warming up at the same time).
  const double warm_us = per_kernel_us(g, o.iters, out, 10);
  if (warm_us <= 0 || cudaDeviceSynchronize() != cudaSuccess) {
    std::printf("RESULT mode=%s error=warmup_failed\n", o.mode.c_str());
    return 1;
  }
  std::printf("INFO iters=%d kernel_us=%.1f warmup_kernel_us=%.1f\n", o.iters, o.kernel_us,
              warm_us);
  GpuClock clk;
  clk.calibrate();
  if (clk.ref == nullptr) {
    std::printf("RESULT mode=%s error=clock_calibration_failed\n", o.mode.c_str());
    return 1;
  }

  const double start = start_instant(o);
  if (start < 0) {
    std::printf("RESULT mode=%s error=no_start_signal\n", o.mode.c_str());
    return 1;
  }
  int rc = 0;
  if (o.mode == "throughput") {
    rc = throughput(o, g, clk, out, start);
  } else if (o.mode == "latency") {
    rc = latency(o, g, out, start);
  } else {
    sleep_until_wall(start + o.warmup + o.window + o.tail);
    std::printf("RESULT mode=idle window_s=%.3f start=%.3f error=cudaSuccess\n", o.window, start);
  }
  (void)cudaEventDestroy(clk.ref);
  (void)cudaFree(out);
  return rc;
}
