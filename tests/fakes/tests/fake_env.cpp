// Every test process of xpu_fakes_tests gets its own state file (a fresh simulated device set:
// 2 devices of 16 GiB, 256 MiB contexts) before main() runs; forked children share it.
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>

namespace {

char g_path[128];
pid_t g_owner = 0;

void remove_state_file() {
  if (getpid() == g_owner) unlink(g_path);
}

const bool g_configured = [] {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  snprintf(g_path, sizeof g_path, "/tmp/xpu-fake-test-%d-%ld.state", static_cast<int>(getpid()),
           static_cast<long>(ts.tv_nsec));
  g_owner = getpid();
  setenv("XPU_FAKE_STATE", g_path, 1);
  setenv("XPU_FAKE_DEVICES", "2", 1);
  setenv("XPU_FAKE_TOTAL_MEM", "17179869184", 1);
  setenv("XPU_FAKE_CTX_BYTES", "268435456", 1);
  unsetenv("XPU_FAKE_NS_PER_BLOCK");
  atexit(remove_state_file);
  return true;
}();

}  // namespace
