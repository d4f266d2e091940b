// driver_microbench: host-side cost of the driver calls the shim sits on (bench/README.md).
//
// Two ways to see the shim's cost, both printed by every run:
//  1. Across processes: bench/run_bench.sh runs this binary without and with the shim, alternately,
//     and compares the per-op medians. Ops:
//       launch      cuLaunchKernel of an empty <<<1,1>>> kernel, called directly (-lcuda): reaches
//                   the shim through its exported symbol
//       launch_rt   the same kernel through cudart (<<<>>>): reaches the shim through the pointer
//                   cudart got from cuGetProcAddress, the path PyTorch takes
//       alloc_free  cuMemAlloc_v2(1 MiB) + cuMemFree_v2, one pair per call
//       meminfo     cuMemGetInfo_v2
//  2. Inside one process ("inproc"): interleaved batches of the function the program gets (the
//  shim's
//     hook under the shim) and the driver's real function (real_driver.hpp), for launch, alloc_free
//     and meminfo. Same process, same moment, so process-to-process noise cancels; without the shim
//     both sides are the same function and the delta shows the method's own noise.
// Calls are timed in batches (launch batches end with an untimed cuCtxSynchronize, so the launch
// queue never fills and we time the host path, not the GPU); per-call cost = batch time / batch
// size. Prints, per op:
//   RESULT op=<op> ns_median=<median over batches> ns_p10=.. ns_p90=.. batches=.. calls=..
//   RESULT op=<op>_inproc hooked_ns=.. real_ns=.. delta_ns=<median of per-batch differences>
//   batches=..
//
// Usage: driver_microbench [--ops launch,launch_rt,alloc_free,meminfo,inproc] [--launches 200000]
//                          [--pairs 5000] [--infos 20000]
#include <cuda.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "gpu_check.hpp"
#include "real_driver.hpp"

namespace {

using Clock = std::chrono::steady_clock;

__global__ void empty_kernel() {}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const std::size_t i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

// Per-call ns of one batch of `n` calls of `body`, or a negative value if a call failed.
template <typename Body>
double batch_ns(int n, Body& body) {
  const auto t0 = Clock::now();
  for (int i = 0; i < n; ++i)
    if (!body()) return -1.0;
  return std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / n;
}

// Times batches of `per_batch` calls; `after` runs untimed after each batch. The first batches are
// warm-up (lazy loading, allocator pools) and are dropped. A template, not std::function: the
// indirection would be part of every timed call.
template <typename Body, typename After>
void time_op(const char* op, long calls, int per_batch, Body body, After after) {
  const long batches = std::max(1L, calls / per_batch);
  const int warmup = 3;
  std::vector<double> ns;
  for (long b = 0; b < batches + warmup; ++b) {
    const double t = batch_ns(per_batch, body);
    after();
    if (t < 0) {
      std::printf("RESULT op=%s error=call_failed batch=%ld\n", op, b);
      return;
    }
    if (b >= warmup) ns.push_back(t);
  }
  std::printf("RESULT op=%s ns_median=%.1f ns_p10=%.1f ns_p90=%.1f batches=%ld calls=%ld\n", op,
              percentile(ns, 0.5), percentile(ns, 0.1), percentile(ns, 0.9), batches,
              batches * per_batch);
}

// Interleaves batches of `hooked` and `real` (alternating which goes first, so drift cancels) and
// reports both medians and the median of the per-batch-pair differences.
template <typename Hooked, typename Real, typename After>
void time_paired(const char* op, long calls, int per_batch, Hooked hooked, Real real, After after) {
  const long batches = std::max(1L, calls / per_batch);
  const int warmup = 3;
  std::vector<double> h_ns, r_ns, diff;
  for (long b = 0; b < batches + warmup; ++b) {
    double h = 0, r = 0;
    if (b % 2 == 0) {
      h = batch_ns(per_batch, hooked);
      after();
      r = batch_ns(per_batch, real);
      after();
    } else {
      r = batch_ns(per_batch, real);
      after();
      h = batch_ns(per_batch, hooked);
      after();
    }
    if (h < 0 || r < 0) {
      std::printf("RESULT op=%s_inproc error=call_failed batch=%ld\n", op, b);
      return;
    }
    if (b < warmup) continue;
    h_ns.push_back(h);
    r_ns.push_back(r);
    diff.push_back(h - r);
  }
  std::printf(
      "RESULT op=%s_inproc hooked_ns=%.1f real_ns=%.1f delta_ns=%.1f batches=%ld calls=%ld\n", op,
      percentile(h_ns, 0.5), percentile(r_ns, 0.5), percentile(diff, 0.5), batches,
      batches * per_batch);
}

bool wanted(const std::string& ops, const char* op) {
  return ("," + ops + ",").find("," + std::string(op) + ",") != std::string::npos;
}

}  // namespace

int main(int argc, char** argv) {
  const xpu::gputest::Args args(argc, argv);
  const std::string ops = args.value("--ops", "launch,launch_rt,alloc_free,meminfo,inproc");
  const long launches = args.integer("--launches", 200000);
  const long pairs = args.integer("--pairs", 5000);
  const long infos = args.integer("--infos", 20000);
  constexpr std::size_t kMiB = std::size_t{1} << 20;

  if (cudaFree(nullptr) != cudaSuccess) {  // primary context, shared with the driver calls below
    std::printf("RESULT op=init error=cuda_init_failed\n");
    return 1;
  }
  CUfunction fn = nullptr;
  if (cudaGetFuncBySymbol(&fn, reinterpret_cast<const void*>(&empty_kernel)) != cudaSuccess) {
    std::printf("RESULT op=init error=no_function\n");
    return 1;
  }
  const auto sync = [] { (void)cuCtxSynchronize(); };
  const auto nothing = [] {};
  const auto launch = [fn] {
    return cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, nullptr, nullptr, nullptr) == CUDA_SUCCESS;
  };
  const auto alloc_free = [] {
    CUdeviceptr p = 0;
    return cuMemAlloc_v2(&p, kMiB) == CUDA_SUCCESS && cuMemFree_v2(p) == CUDA_SUCCESS;
  };
  const auto meminfo = [] {
    std::size_t free_b = 0, total_b = 0;
    return cuMemGetInfo_v2(&free_b, &total_b) == CUDA_SUCCESS;
  };

  if (wanted(ops, "launch")) time_op("launch", launches, 250, launch, sync);
  if (wanted(ops, "launch_rt")) {
    time_op(
        "launch_rt", launches / 2, 250,
        [] {
          empty_kernel<<<1, 1>>>();
          return true;
        },
        sync);
    if (cudaGetLastError() != cudaSuccess) std::printf("RESULT op=launch_rt error=launch_failed\n");
  }
  if (wanted(ops, "alloc_free")) time_op("alloc_free", pairs, 50, alloc_free, nothing);
  if (wanted(ops, "meminfo")) time_op("meminfo", infos, 500, meminfo, nothing);

  if (wanted(ops, "inproc")) {
    const auto cuda = xpu::bench::find_loaded("libcuda.so");
    const auto real_launch = reinterpret_cast<decltype(&cuLaunchKernel)>(
        xpu::bench::real_symbol(cuda, "cuLaunchKernel"));
    const auto real_alloc =
        reinterpret_cast<decltype(&cuMemAlloc_v2)>(xpu::bench::real_symbol(cuda, "cuMemAlloc_v2"));
    const auto real_free =
        reinterpret_cast<decltype(&cuMemFree_v2)>(xpu::bench::real_symbol(cuda, "cuMemFree_v2"));
    const auto real_info = reinterpret_cast<decltype(&cuMemGetInfo_v2)>(
        xpu::bench::real_symbol(cuda, "cuMemGetInfo_v2"));
    if (!real_launch || !real_alloc || !real_free || !real_info) {
      std::printf("RESULT op=inproc error=real_driver_symbols_not_found path=%s\n",
                  cuda.path.empty() ? "none" : cuda.path.c_str());
      return 1;
    }
    time_paired(
        "launch", launches / 2, 250, launch,
        [&] {
          return real_launch(fn, 1, 1, 1, 1, 1, 1, 0, nullptr, nullptr, nullptr) == CUDA_SUCCESS;
        },
        sync);
    time_paired(
        "alloc_free", pairs, 50, alloc_free,
        [&] {
          CUdeviceptr p = 0;
          return real_alloc(&p, kMiB) == CUDA_SUCCESS && real_free(p) == CUDA_SUCCESS;
        },
        nothing);
    time_paired(
        "meminfo", infos, 500, meminfo,
        [&] {
          std::size_t free_b = 0, total_b = 0;
          return real_info(&free_b, &total_b) == CUDA_SUCCESS;
        },
        nothing);
  }
  return 0;
}
