// driver_microbench: host-side cost of the driver calls the shim sits on (bench/README.md).
//
// Run the same binary without and with the shim (bench/run_bench.sh alternates them) and compare.
// Ops (--ops, comma-separated; default all):
//   launch      cuLaunchKernel of an empty <<<1,1>>> kernel, called directly (-lcuda): reaches the
//               shim through its exported symbol
//   launch_rt   the same kernel through cudart (empty_kernel<<<1,1>>>): reaches the shim through the
//               pointer cudart got from cuGetProcAddress, the path PyTorch takes
//   alloc_free  cuMemAlloc_v2(1 MiB) + cuMemFree_v2, one pair per call
//   meminfo     cuMemGetInfo_v2
// Calls are timed in batches (launch batches end with an untimed cuCtxSynchronize, so the launch queue
// never fills and we time the host path, not the GPU); per-call cost = batch time / batch size.
// Prints, per op:  RESULT op=<op> ns_median=<median over batches> ns_p10=.. ns_p90=.. batches=.. calls=..
//
// Usage: driver_microbench [--ops launch,launch_rt,alloc_free,meminfo] [--launches 200000]
//                          [--pairs 20000] [--infos 100000]
#include <cuda.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "gpu_check.hpp"

namespace {

using Clock = std::chrono::steady_clock;

__global__ void empty_kernel() {}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const std::size_t i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

// Times `batches` batches of `per_batch` calls of `body`; `after` runs untimed after each batch.
// The first batches are warm-up (first-call lazy loading, allocator pools) and are dropped.
// A template, not std::function: the indirection would be part of every timed call.
template <typename Body, typename After>
void time_op(const char* op, long calls, int per_batch, Body body, After after) {
  const long batches = std::max(1L, calls / per_batch);
  const int warmup = 3;
  std::vector<double> per_call_ns;
  per_call_ns.reserve(static_cast<std::size_t>(batches));
  for (long b = 0; b < batches + warmup; ++b) {
    const auto t0 = Clock::now();
    for (int i = 0; i < per_batch; ++i) {
      if (!body()) {
        std::printf("RESULT op=%s error=call_failed batch=%ld\n", op, b);
        return;
      }
    }
    const auto t1 = Clock::now();
    after();
    if (b >= warmup)
      per_call_ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count() / per_batch);
  }
  std::printf("RESULT op=%s ns_median=%.1f ns_p10=%.1f ns_p90=%.1f batches=%ld calls=%ld\n", op,
              percentile(per_call_ns, 0.5), percentile(per_call_ns, 0.1),
              percentile(per_call_ns, 0.9), batches, batches * per_batch);
}

bool wanted(const std::string& ops, const char* op) {
  const std::string list = "," + ops + ",";
  return list.find("," + std::string(op) + ",") != std::string::npos;
}

}  // namespace

int main(int argc, char** argv) {
  const xpu::gputest::Args args(argc, argv);
  const std::string ops = args.value("--ops", "launch,launch_rt,alloc_free,meminfo");
  const long launches = args.integer("--launches", 200000);
  const long pairs = args.integer("--pairs", 20000);
  const long infos = args.integer("--infos", 100000);

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

  if (wanted(ops, "launch")) {
    time_op("launch", launches, 250, [fn] {
      return cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, nullptr, nullptr, nullptr) == CUDA_SUCCESS;
    }, sync);
  }
  if (wanted(ops, "launch_rt")) {
    time_op("launch_rt", launches, 250, [] {
      empty_kernel<<<1, 1>>>();
      return true;
    }, sync);
    if (cudaGetLastError() != cudaSuccess) std::printf("RESULT op=launch_rt error=launch_failed\n");
  }
  if (wanted(ops, "alloc_free")) {
    time_op("alloc_free", pairs, 100, [] {
      CUdeviceptr p = 0;
      return cuMemAlloc_v2(&p, std::size_t{1} << 20) == CUDA_SUCCESS && cuMemFree_v2(p) == CUDA_SUCCESS;
    }, nothing);
  }
  if (wanted(ops, "meminfo")) {
    time_op("meminfo", infos, 1000, [] {
      std::size_t free_b = 0, total_b = 0;
      return cuMemGetInfo_v2(&free_b, &total_b) == CUDA_SUCCESS;
    }, nothing);
  }
  return 0;
}
