// compute_loop: a compute-bound load of known shape, for the time-slice benchmarks
// (bench/README.md).
//
// Every kernel fills all SMs (one full wave of resident blocks) with FMA work for --kernel-us
// microseconds, timed on the device with %globaltimer. So "kernels per second x kernel time" is the
// fraction of the GPU this process got, alone or next to others, with or without `xpu-run
// --compute`. Modes:
//   throughput (default)  back to back, at most --depth kernels in flight, for --seconds; prints
//   one
//                         SAMPLE line per second and a RESULT with kernels_per_s and busy_fraction
//                         (= kernels * kernel_us / elapsed; ~1.0 alone on an idle card)
//   latency               one kernel every 1/--rate s on an open-loop schedule (a late kernel does
//   not
//                         delay the schedule); latency = completion - scheduled time; p50/p99/max
// Kernels go through cudart (<<<>>>), i.e. through the cuLaunchKernel pointer cudart got from
// cuGetProcAddress, the path PyTorch and most CUDA programs take.
//
// Usage: compute_loop [--mode throughput|latency] [--seconds 10] [--kernel-us 2000] [--depth 4]
//                     [--rate 50]
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "gpu_check.hpp"

namespace {

using Clock = std::chrono::steady_clock;

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
};

Grid full_wave() {
  Grid g;
  int sms = 0, per_sm = 0;
  (void)cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
  (void)cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, burn, g.threads, 0);
  g.blocks = std::max(1, sms * std::max(1, per_sm));
  return g;
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

int throughput(const Grid& g, unsigned long long ns, float* sink, double seconds, int depth) {
  std::vector<cudaEvent_t> ring(static_cast<std::size_t>(std::max(1, depth)));
  for (auto& e : ring) (void)cudaEventCreateWithFlags(&e, cudaEventDisableTiming);
  long launched = 0, done = 0, done_at_last_sample = 0;
  const auto t0 = Clock::now();
  double next_sample = 1.0, last_sample = 0.0;
  while (seconds_since(t0) < seconds) {
    cudaEvent_t& slot = ring[static_cast<std::size_t>(launched) % ring.size()];
    if (launched >= static_cast<long>(ring.size())) {
      (void)cudaEventSynchronize(slot);  // the kernel that used this slot has finished
      ++done;
    }
    burn<<<g.blocks, g.threads>>>(ns, sink);
    (void)cudaEventRecord(slot, nullptr);
    ++launched;
    const double t = seconds_since(t0);
    if (t >= next_sample) {
      const long k = done - done_at_last_sample;
      std::printf("SAMPLE t=%.1f kernels=%ld busy=%.3f\n", t, k,
                  static_cast<double>(k) * static_cast<double>(ns) * 1e-9 / (t - last_sample));
      done_at_last_sample = done;
      last_sample = t;
      next_sample += 1.0;
    }
  }
  (void)cudaDeviceSynchronize();
  done = launched;
  const double elapsed = seconds_since(t0);
  for (auto& e : ring) (void)cudaEventDestroy(e);
  const cudaError_t err = cudaGetLastError();
  std::printf(
      "RESULT mode=throughput seconds=%.3f kernels=%ld kernels_per_s=%.2f busy_fraction=%.4f "
      "kernel_us=%.0f grid=%d block=%d error=%s\n",
      elapsed, done, static_cast<double>(done) / elapsed,
      static_cast<double>(done) * static_cast<double>(ns) * 1e-9 / elapsed,
      static_cast<double>(ns) / 1000.0, g.blocks, g.threads, cudaGetErrorName(err));
  return err == cudaSuccess ? 0 : 1;
}

int latency(const Grid& g, unsigned long long ns, float* sink, double seconds, double rate) {
  std::vector<double> lat_ms;
  const auto t0 = Clock::now();
  const auto period = std::chrono::duration<double>(1.0 / std::max(rate, 0.001));
  long late = 0;
  for (long i = 0;; ++i) {
    const auto due =
        t0 + std::chrono::duration_cast<Clock::duration>(period * static_cast<double>(i));
    if (std::chrono::duration<double>(due - t0).count() >= seconds) break;
    if (Clock::now() < due) {
      std::this_thread::sleep_until(due);
    } else if (i > 0) {
      ++late;  // the previous kernel finished after this one's slot: queueing shows in its latency
    }
    burn<<<g.blocks, g.threads>>>(ns, sink);
    (void)cudaStreamSynchronize(nullptr);
    lat_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - due).count());
  }
  std::sort(lat_ms.begin(), lat_ms.end());
  const auto pct = [&](double p) {
    return lat_ms.empty()
               ? 0.0
               : lat_ms[std::min(lat_ms.size() - 1,
                                 static_cast<std::size_t>(p * static_cast<double>(lat_ms.size())))];
  };
  const cudaError_t err = cudaGetLastError();
  std::printf(
      "RESULT mode=latency seconds=%.3f kernels=%zu rate=%.1f late=%ld p50_ms=%.3f p99_ms=%.3f "
      "max_ms=%.3f kernel_us=%.0f error=%s\n",
      seconds_since(t0), lat_ms.size(), rate, late, pct(0.5), pct(0.99),
      lat_ms.empty() ? 0.0 : lat_ms.back(), static_cast<double>(ns) / 1000.0,
      cudaGetErrorName(err));
  return err == cudaSuccess ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  const xpu::gputest::Args args(argc, argv);
  const std::string mode = args.value("--mode", "throughput");
  const double seconds = std::atof(args.value("--seconds", "10"));
  const unsigned long long ns =
      1000ull * static_cast<unsigned long long>(args.integer("--kernel-us", 2000));
  std::printf("INFO pid=%d\n", static_cast<int>(getpid()));
  std::fflush(stdout);

  float* sink = nullptr;
  if (cudaMalloc(&sink, sizeof(float)) != cudaSuccess) {
    std::printf("RESULT mode=%s error=cuda_init_failed\n", mode.c_str());
    return 1;
  }
  const Grid g = full_wave();
  burn<<<g.blocks, g.threads>>>(ns, sink);  // warm-up: module load, clocks up
  (void)cudaDeviceSynchronize();
  const int rc = mode == "latency"
                     ? latency(g, ns, sink, seconds, std::atof(args.value("--rate", "50")))
                     : throughput(g, ns, sink, seconds, args.integer("--depth", 4));
  (void)cudaFree(sink);
  return rc;
}
