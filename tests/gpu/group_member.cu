// group_member: one of the two processes of the group test (tests/gpu/group_kill.sh).
//
// Two processes started with the same `xpu-run --group NAME --mem Q` share one quota. The script
// coordinates them through files in --dir (no pipes: the holder is SIGKILLed mid-run):
//   probe  creates its context first, writes b_pid + b_ready, waits for `go`, then asks for
//          --probe bytes, which must be denied (the holder took the rest); writes b_tried; waits
//          for `killed`, then retries every 10 ms and reports how long after the kill it got the
//          memory.
//   hold   allocates --chunk pieces until denied, then --fine pieces until denied, so what is left
//   of
//          the quota is smaller than a fine piece; writes a_pid, a_held, a_ready; sleeps until
//          killed.
// The probe's context exists before the holder fills the group, so the group's real usage (both
// contexts included) never has to exceed Q.
//
// Usage: group_member hold  --dir D [--chunk 256MiB] [--fine 64MiB] [--sleep-s 120]
//        group_member probe --dir D [--probe 512MiB] [--limit-ms 1000] [--deadline-ms 5000]
#include <cuda_runtime.h>

#include <string>
#include <vector>

#include "gpu_check.hpp"

namespace {

using xpu::gputest::Args;
using xpu::gputest::num;
using xpu::gputest::Report;
using Clock = std::chrono::steady_clock;

std::string path(const Args& a, const char* name) {
  return std::string(a.value("--dir", ".")) + "/" + name;
}

// Written to a temporary name and renamed, so the script never reads a half-written file.
void write_file(const std::string& p, const std::string& text) {
  const std::string tmp = p + ".tmp";
  if (FILE* f = std::fopen(tmp.c_str(), "w")) {
    std::fputs(text.c_str(), f);
    std::fclose(f);
    std::rename(tmp.c_str(), p.c_str());
  }
}

bool wait_file(const std::string& p, int timeout_ms) {
  const auto end = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (Clock::now() < end) {
    if (access(p.c_str(), F_OK) == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

std::string err_name(cudaError_t e) {
  return std::string(cudaGetErrorName(e)) + "(" + std::to_string(static_cast<int>(e)) + ")";
}

std::uint64_t grab(std::vector<void*>& held, std::uint64_t piece, std::size_t max_pieces) {
  std::uint64_t bytes = 0;
  for (std::size_t i = 0; i < max_pieces; ++i) {
    void* p = nullptr;
    if (cudaMalloc(&p, piece) != cudaSuccess) {
      (void)cudaGetLastError();
      break;
    }
    (void)cudaMemset(p, 0x3C, piece);  // commit, so nvidia-smi sees it
    held.push_back(p);
    bytes += piece;
  }
  return bytes;
}

int hold(const Args& a, Report& r) {
  std::vector<void*> held;
  // Caps (64 GiB worth) only keep a broken shim from looping over the whole card.
  std::uint64_t bytes = grab(held, a.size("--chunk", "256MiB"), 256);
  bytes += grab(held, a.size("--fine", "64MiB"), 64);
  (void)cudaDeviceSynchronize();
  r.info("a_held_bytes", num(bytes));
  write_file(path(a, "a_held"), num(bytes));
  write_file(path(a, "a_pid"), std::to_string(getpid()));
  write_file(path(a, "a_ready"), "1");
  // The script kills us with SIGKILL; this sleep only bounds a forgotten holder.
  xpu::gputest::hold(a.integer("--sleep-s", 120) * 1000);
  return 0;
}

int probe(const Args& a, Report& r) {
  const std::uint64_t bytes = a.size("--probe", "512MiB");
  const int limit_ms = a.integer("--limit-ms", 1000);
  write_file(path(a, "b_pid"), std::to_string(getpid()));
  write_file(path(a, "b_ready"), "1");
  if (!wait_file(path(a, "go"), 60000)) {
    r.check("b_got_go", false, "go", "timeout");
    return r.exit_code();
  }

  void* p = nullptr;
  const cudaError_t denied = cudaMalloc(&p, bytes);
  r.check("b_denied_while_a_holds", denied == cudaErrorMemoryAllocation,
          err_name(cudaErrorMemoryAllocation), err_name(denied));
  if (denied == cudaSuccess) (void)cudaFree(p);
  (void)cudaGetLastError();
  write_file(path(a, "b_tried"), "1");

  if (!wait_file(path(a, "killed"), 60000)) {
    r.check("b_saw_kill", false, "killed", "timeout");
    return r.exit_code();
  }
  const auto t0 = Clock::now();
  const auto deadline = t0 + std::chrono::milliseconds(a.integer("--deadline-ms", 5000));
  cudaError_t e = cudaErrorMemoryAllocation;
  int tries = 0;
  while (Clock::now() < deadline) {
    ++tries;
    e = cudaMalloc(&p, bytes);
    if (e == cudaSuccess) break;
    (void)cudaGetLastError();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  r.check("b_alloc_after_kill", e == cudaSuccess, "cudaSuccess", err_name(e),
          std::to_string(tries) + " tries");
  r.check("b_recovered_within_limit", e == cudaSuccess && ms <= limit_ms,
          "<=" + std::to_string(limit_ms) + "ms", std::to_string(ms) + "ms");
  if (e == cudaSuccess) (void)cudaFree(p);
  return r.exit_code();
}

}  // namespace

int main(int argc, char** argv) {
  const Args args(argc, argv);
  Report r;
  const cudaError_t init = cudaFree(nullptr);
  r.check(std::string(argc > 1 ? argv[1] : "?") + "_init", init == cudaSuccess, "cudaSuccess",
          err_name(init));
  if (init != cudaSuccess) return r.exit_code();
  const std::string role = argc > 1 ? argv[1] : "";
  if (role == "hold") return hold(args, r);
  if (role == "probe") return probe(args, r);
  std::fprintf(stderr, "usage: group_member hold|probe --dir DIR ...\n");
  return 2;
}
