// runtime_quota: what a CUDA C++ runtime program sees under a memory quota (issue 2 acceptance).
//
// Built with nvcc's default static cudart, which reaches the driver only through
// dlopen("libcuda.so.1") + dlsym("cuGetProcAddress_v2") + cuGetProcAddress: the path of every
// nvcc-built program. Checks, with Q = --quota:
//   cudaMemGetInfo total == Q, free <= Q; cudaGetDeviceProperties.totalGlobalMem == Q;
//   one cudaMalloc / cudaMallocAsync of Q + chunk fails with cudaErrorMemoryAllocation;
//   chunks are allocated until cudaErrorMemoryAllocation, their sum stays <= Q and the reported
//   usage (total - free) never exceeds Q; after freeing everything the same chunks fit again and a
//   kernel still runs on them.
//
// Usage: runtime_quota --quota 2GiB [--chunk 256MiB] [--hold-ms 600] [--quick]
//        runtime_quota --expect-init-failure      (bad configuration: CUDA init must fail)
//        runtime_quota --quota none [--max-fill 4GiB]   (baseline without the shim)
#include <cuda_runtime.h>

#include <algorithm>
#include <vector>

#include "gpu_check.hpp"

namespace {

using xpu::gputest::Args;
using xpu::gputest::ge;
using xpu::gputest::le;
using xpu::gputest::num;
using xpu::gputest::Report;

std::string err_name(cudaError_t e) {
  return std::string(cudaGetErrorName(e)) + "(" + std::to_string(static_cast<int>(e)) + ")";
}

__global__ void stamp(unsigned* p, std::size_t n, unsigned value) {
  for (std::size_t i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
    p[i] = value;
}

// Runs a kernel over a chunk and reads back its last word: the memory we were given is real.
bool kernel_roundtrip(void* chunk, std::size_t bytes) {
  const std::size_t words = bytes / sizeof(unsigned);
  stamp<<<264, 256>>>(static_cast<unsigned*>(chunk), words, 0xC0FFEEu);
  unsigned last = 0;
  const cudaError_t e = cudaMemcpy(&last, static_cast<unsigned*>(chunk) + words - 1, sizeof last,
                                   cudaMemcpyDeviceToHost);
  return e == cudaSuccess && last == 0xC0FFEEu;
}

struct Fill {
  std::vector<void*> chunks;
  cudaError_t stop = cudaSuccess;  // the error that ended the fill
  std::uint64_t max_used = 0;      // largest (total - free) reported while filling
  std::uint64_t max_total = 0;
  std::uint64_t min_total = UINT64_MAX;
};

// Allocates `chunk` bytes at a time until an error or `limit` bytes. Each chunk is memset so the
// pages are really committed, then cudaMemGetInfo shows the usage the shim reports.
Fill fill(std::uint64_t chunk, std::uint64_t limit) {
  Fill f;
  while (f.chunks.size() * chunk + chunk <= limit) {
    void* p = nullptr;
    const cudaError_t e = cudaMalloc(&p, chunk);
    if (e != cudaSuccess) {
      f.stop = e;
      (void)cudaGetLastError();  // out-of-memory is not sticky; clear it for the next call
      break;
    }
    f.chunks.push_back(p);
    (void)cudaMemset(p, 0xA5, chunk);
    std::size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess) {
      f.max_used = std::max<std::uint64_t>(f.max_used, total_b - free_b);
      f.max_total = std::max<std::uint64_t>(f.max_total, total_b);
      f.min_total = std::min<std::uint64_t>(f.min_total, total_b);
    }
  }
  (void)cudaDeviceSynchronize();
  return f;
}

void free_all(std::vector<void*>& chunks) {
  for (void* p : chunks) (void)cudaFree(p);
  chunks.clear();
}

}  // namespace

int main(int argc, char** argv) {
  const Args args(argc, argv);
  Report r;

  const cudaError_t init = cudaFree(nullptr);  // creates the primary context
  if (args.flag("--expect-init-failure")) {
    r.check("init_fails", init != cudaSuccess, "!=cudaSuccess", err_name(init));
    return r.exit_code();
  }
  r.check("init", init == cudaSuccess, "cudaSuccess", err_name(init));
  if (init != cudaSuccess) return r.exit_code();

  const auto quota = args.quota();
  const bool q = quota.has_value();
  const std::uint64_t Q = quota.value_or(0);
  const std::uint64_t chunk = args.size("--chunk", "256MiB");
  const int hold_ms = args.integer("--hold-ms", 600);

  std::size_t free0 = 0, total0 = 0;
  const cudaError_t mi = cudaMemGetInfo(&free0, &total0);
  r.check("meminfo_call", mi == cudaSuccess, "cudaSuccess", err_name(mi));
  r.check_if(q, "meminfo_total_eq_quota", total0 == Q, num(Q), num(total0));
  r.check_if(q, "meminfo_free_le_quota", free0 <= Q, le(Q), num(free0));

  cudaDeviceProp prop{};
  (void)cudaGetDeviceProperties(&prop, 0);
  r.info("device_name", "-", prop.name);
  r.check_if(q, "props_totalGlobalMem_eq_quota", prop.totalGlobalMem == Q, num(Q),
             num(prop.totalGlobalMem));

  if (q) {
    // One allocation bigger than the whole quota: must fail cleanly, and the process goes on.
    void* big = nullptr;
    const cudaError_t e = cudaMalloc(&big, Q + chunk);
    r.check("over_quota_cudaMalloc", e == cudaErrorMemoryAllocation,
            err_name(cudaErrorMemoryAllocation), err_name(e));
    if (e == cudaSuccess) (void)cudaFree(big);
    (void)cudaGetLastError();

    // Stream-ordered pools (cuMemAllocAsync) are a separate driver entry point.
    void* big_async = nullptr;
    const cudaError_t ea = cudaMallocAsync(&big_async, Q + chunk, nullptr);
    r.check("over_quota_cudaMallocAsync", ea == cudaErrorMemoryAllocation,
            err_name(cudaErrorMemoryAllocation), err_name(ea));
    if (ea == cudaSuccess) (void)cudaFreeAsync(big_async, nullptr);
    (void)cudaStreamSynchronize(nullptr);
    (void)cudaGetLastError();
  }

  if (args.flag("--quick")) {
    xpu::gputest::hold(hold_ms);  // the context is all we hold; let the observer see it
    return r.exit_code();
  }

  // Fill. Under a quota the loop may only end with an out-of-memory error; the cap (a few chunks
  // above Q) only stops a broken shim from taking the whole card.
  const std::uint64_t limit = q ? Q + 4 * chunk : args.size("--max-fill", "4GiB");
  Fill f = fill(chunk, limit);
  const std::uint64_t filled = f.chunks.size() * chunk;
  if (q) {
    r.check("fill_stops_with_oom", f.stop == cudaErrorMemoryAllocation,
            err_name(cudaErrorMemoryAllocation), err_name(f.stop));
    r.check("fill_bytes_le_quota", filled <= Q, le(Q), num(filled));
    // The context's own footprint (~0.5 GiB on H100) counts toward Q: "a bit less than Q" usable.
    const std::uint64_t usable_min = Q > xpu::gputest::kGiB ? Q - xpu::gputest::kGiB : 0;
    r.check("fill_bytes_usable", filled >= usable_min && filled > 0, ge(usable_min), num(filled),
            "context overhead counts toward the quota");
    r.check("reported_used_le_quota", f.max_used <= Q, le(Q), num(f.max_used),
            "max of cudaMemGetInfo total-free while filling");
    r.check("reported_total_stays_quota", f.min_total == Q && f.max_total == Q, num(Q),
            num(f.min_total) + ".." + num(f.max_total));
  } else {
    r.check("fill_allocates", !f.chunks.empty(), ">0", num(filled));
    r.info("fill_stop", err_name(f.stop));
  }
  xpu::gputest::hold(hold_ms);

  const std::size_t n = f.chunks.size();
  free_all(f.chunks);
  std::size_t free1 = 0, total1 = 0;
  (void)cudaMemGetInfo(&free1, &total1);
  // Everything we freed must be credited back: free returns to its start value (minus a chunk of
  // slack for driver-internal allocations made meanwhile).
  r.check("free_recovers_after_free", free1 + chunk >= free0, ge(free0 - chunk), num(free1));

  Fill again = fill(chunk, n * chunk);
  r.check("realloc_after_free", again.chunks.size() == n, num(n) + "chunks",
          num(again.chunks.size()) + "chunks");
  const bool kernel_ok = !again.chunks.empty() && kernel_roundtrip(again.chunks.back(), chunk);
  r.check("kernel_on_realloc", kernel_ok, "1", kernel_ok ? "1" : "0");
  free_all(again.chunks);
  return r.exit_code();
}
