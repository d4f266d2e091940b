// Per-export call counters (the xpuFakeCallCount test hook), the export-name table lookup, and
// this library's private state region (used when XPU_FAKE_STATE is unset; the fake NVML borrows it
// through xpuFakeSharedStateRegion so that both libraries see the same devices).
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "device_state.hpp"
#include "exports.hpp"
#include "fake_common.hpp"
#include "xpu_fake/fake_api.h"

namespace {
std::atomic<unsigned long long> g_counts[XPU_EXP_COUNT];
}  // namespace

extern "C" void xpu_fake_count_export(int id) {
  if (id >= 0 && id < XPU_EXP_COUNT) g_counts[id].fetch_add(1, std::memory_order_relaxed);
}

namespace xpu_fake {

int export_index(const char* name) {
  if (name == nullptr) return -1;
  const char* const* begin = xpu_fake_export_names;
  const char* const* end = begin + xpu_fake_export_count;
  auto less = [](const char* a, const char* b) { return strcmp(a, b) < 0; };
  const char* const* it = std::lower_bound(begin, end, name, less);
  if (it == end || strcmp(*it, name) != 0) return -1;
  return static_cast<int>(it - begin);
}

void* export_address(int id) {
  // A function address as void*: what cuGetProcAddress hands out (POSIX guarantees it works).
  return reinterpret_cast<void*>(xpu_fake_export_addrs[id]);
}

SharedState* private_region() {
  void* p = mmap(nullptr, sizeof(SharedState), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                 -1, 0);
  if (p == MAP_FAILED) return nullptr;
  auto* s = static_cast<SharedState*>(p);
  initialise_region(s);
  return s;
}

}  // namespace xpu_fake

extern "C" {

XPU_FAKE_EXPORT unsigned long long xpuFakeCallCount(const char* export_name) {
  const int id = xpu_fake::export_index(export_name);
  return id < 0 ? 0 : g_counts[id].load(std::memory_order_relaxed);
}

XPU_FAKE_EXPORT void xpuFakeResetCallCounts(void) {
  for (auto& c : g_counts) c.store(0, std::memory_order_relaxed);
}

XPU_FAKE_EXPORT void* xpuFakeSharedStateRegion(void) { return xpu_fake::state(); }

}  // extern "C"
