#include "xpu/memquota/ledger.hpp"

#include <sched.h>

namespace xpu::memquota {
namespace {
constexpr auto kSeq = std::memory_order_seq_cst;
// Retries of a refusal that may have been caused only by a concurrent reservation. Each retry
// follows a yield, so the slot whose request really fits gets through once the others back out.
constexpr int kMaxRetries = 64;
}  // namespace

std::uint64_t Ledger::group_usage(std::uint32_t group, std::uint32_t device) const {
  const auto tag = static_cast<std::uint16_t>(group + 1);
  std::uint64_t sum = 0;
  for (std::uint32_t s = 0; s < kMaxSlots; ++s) {
    if (t_.slot_group[s].load(kSeq) == tag) sum += t_.charged[device][s].load(kSeq);
  }
  return sum;
}

std::uint64_t Ledger::slot_usage(std::uint32_t slot, std::uint32_t device) const {
  return t_.charged[device][slot].load(std::memory_order_relaxed);
}

std::uint64_t Ledger::quota(std::uint32_t group, std::uint32_t device) const {
  return t_.quota[group][device].load(std::memory_order_acquire);
}

Admission Ledger::reserve(std::uint32_t group, std::uint32_t slot, std::uint32_t device,
                          std::uint64_t bytes) {
  const std::uint64_t limit = quota(group, device);
  std::atomic<std::uint64_t>& mine = t_.charged[device][slot];
  if (limit == kUnlimited || limit == kQuotaUnset) {
    mine.fetch_add(bytes, kSeq);
    return Admission::admitted;
  }
  if (bytes > limit) return Admission::over_quota;
  for (int attempt = 0; attempt < kMaxRetries; ++attempt) {
    mine.fetch_add(bytes, kSeq);
    const std::uint64_t total = group_usage(group, device);
    if (total <= limit) return Admission::admitted;
    mine.fetch_sub(bytes, kSeq);
    // Would the request fit once in-flight reservations of others settle? If even the current
    // committed total leaves no room, the refusal is genuine.
    const std::uint64_t settled = group_usage(group, device);
    if (settled > limit - bytes) return Admission::over_quota;
    sched_yield();
  }
  return Admission::over_quota;
}

void Ledger::force_charge(std::uint32_t slot, std::uint32_t device, std::uint64_t bytes) {
  t_.charged[device][slot].fetch_add(bytes, kSeq);
}

void Ledger::release(std::uint32_t slot, std::uint32_t device, std::uint64_t bytes) {
  std::atomic<std::uint64_t>& mine = t_.charged[device][slot];
  std::uint64_t cur = mine.load(std::memory_order_relaxed);
  while (!mine.compare_exchange_weak(cur, cur >= bytes ? cur - bytes : 0, kSeq)) {
  }
}

void Ledger::attach_slot(std::uint32_t slot, std::uint32_t group) {
  for (std::uint32_t d = 0; d < kMaxDevices; ++d) t_.charged[d][slot].store(0, kSeq);
  t_.slot_group[slot].store(static_cast<std::uint16_t>(group + 1), kSeq);
}

void Ledger::detach_slot(std::uint32_t slot) {
  // Leave the group first so that no sum counts a half-cleared slot.
  t_.slot_group[slot].store(0, kSeq);
  for (std::uint32_t d = 0; d < kMaxDevices; ++d) t_.charged[d][slot].store(0, kSeq);
}

}  // namespace xpu::memquota
