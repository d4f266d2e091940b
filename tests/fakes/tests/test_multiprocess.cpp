// Several processes on one simulated device (the XPU_FAKE_STATE file fake_env.cpp sets up):
// shared memory accounting, reaping of killed processes, one timeline for everyone.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "fake_loader.hpp"
#include "xpu_catch.hpp"

using fk::kGiB;
using fk::query;

namespace {

// A forked child: uses the fake, reports one number through the pipe, then waits or exits.
template <typename F>
pid_t spawn(int fds[2], F body) {
  REQUIRE(pipe(fds) == 0);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    close(fds[0]);
    unsigned long long v = body();
    if (write(fds[1], &v, sizeof v) != static_cast<ssize_t>(sizeof v)) _exit(2);
    _exit(0);
  }
  close(fds[1]);
  return pid;
}

unsigned long long read_result(int fds[2]) {
  unsigned long long v = ~0ull;
  if (read(fds[0], &v, sizeof v) != static_cast<ssize_t>(sizeof v)) v = ~0ull;
  close(fds[0]);
  return v;
}

}  // namespace

TEST_CASE("memory of a SIGKILLed process returns to the device") {
  const auto used0 = query("used_bytes");
  int fds[2];
  const pid_t child = spawn(fds, [&fds] {
    // A fresh process for the driver (a forked child must cuInit again, like the real one).
    if (FK(cuInit)(0) != CUDA_SUCCESS) return 0ull;
    CUcontext c = nullptr;
    FK(cuDevicePrimaryCtxRetain)(&c, 0);
    FK(cuCtxSetCurrent)(c);
    CUdeviceptr p = 0;
    if (FK(cuMemAlloc_v2)(&p, kGiB) != CUDA_SUCCESS) return 0ull;
    unsigned long long ok = 1;
    if (write(fds[1], &ok, sizeof ok) != static_cast<ssize_t>(sizeof ok)) _exit(2);
    pause();  // until killed
    return 0ull;
  });
  REQUIRE(read_result(fds) == 1);
  const std::string me = std::to_string(child);
  CHECK(query("used_bytes_of_pid:" + me) == kGiB + fk::kCtxBytes);
  CHECK(query("contexts_of_pid:" + me) == 1);
  CHECK(query("used_bytes") == used0 + kGiB + fk::kCtxBytes);
  CHECK(query("live_pids") >= 1);

  REQUIRE(kill(child, SIGKILL) == 0);
  // Not waited for yet (a zombie): the reaper must still notice.
  const uint64_t deadline = fk::now_ns() + 2000000000ull;
  while (query("used_bytes") != used0 && fk::now_ns() < deadline) usleep(1000);
  CHECK(query("used_bytes") == used0);
  CHECK(query("used_bytes_of_pid:" + me) == 0);
  int st = 0;
  REQUIRE(waitpid(child, &st, 0) == child);
  CHECK(query("used_bytes") == used0);
  unsigned long long v = 0;
  CHECK(FK(xpuFakeQuery)("used_bytes_of_pid:1x", 0, &v) == -1);
  CHECK(FK(xpuFakeQuery)("used_bytes", 7, &v) == -2);
  CHECK(FK(xpuFakeQuery)("no_such_thing", 0, &v) == -1);
  CHECK(FK(xpuFakeQuery)("busy_ns_of_pid:999999999", 0, &v) == -5);
}

TEST_CASE("kernels of two processes run one after another on the device") {
  const auto dev_busy0 = query("device_busy_ns");
  auto body = [] {
    FK(cuInit)(0);
    CUcontext c = nullptr;
    FK(cuDevicePrimaryCtxRetain)(&c, 0);
    FK(cuCtxSetCurrent)(c);
    for (int i = 0; i < 10; ++i) {  // 10 x 5 ms
      FK(cuLaunchKernel)(fk::dummy_function(), 5000, 1, 1, 1, 1, 1, 0, nullptr, nullptr, nullptr);
    }
    FK(cuCtxSynchronize)();
    return static_cast<unsigned long long>(fk::now_ns());  // when this process saw its work done
  };
  int a_fds[2];
  int b_fds[2];
  const uint64_t t0 = fk::now_ns();  // before either process launches anything
  const pid_t a = spawn(a_fds, body);
  const pid_t b = spawn(b_fds, body);
  const auto a_end = read_result(a_fds);
  const auto b_end = read_result(b_fds);
  int st = 0;
  REQUIRE(waitpid(a, &st, 0) == a);
  REQUIRE(waitpid(b, &st, 0) == b);
  // Each needs 50 ms of device time; on one shared timeline the last one cannot be done before
  // 100 ms of kernels have run (running side by side, both would be done after ~50 ms).
  CHECK(std::max(a_end, b_end) - t0 >= 100000000ull);
  CHECK(query("busy_ns_of_pid:" + std::to_string(a)) == 50000000ull);  // kept after exit
  CHECK(query("busy_ns_of_pid:" + std::to_string(b)) == 50000000ull);
  CHECK(query("kernel_count_of_pid:" + std::to_string(a)) == 10);
  CHECK(query("device_busy_ns") == dev_busy0 + 100000000ull);
  CHECK(query("used_bytes_of_pid:" + std::to_string(a)) == 0);  // exited: reaped
}
