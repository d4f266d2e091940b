#include "xpu/memquota/process_account.hpp"

namespace xpu::memquota {

Admission ProcessAccount::reserve(std::uint32_t device, std::uint64_t bytes) {
  return ledger_.reserve(group_, slot_, device, bytes);
}

void ProcessAccount::cancel(std::uint32_t device, std::uint64_t bytes) {
  ledger_.release(slot_, device, bytes);
}

void ProcessAccount::commit(AllocKind kind, std::uint64_t handle, std::uint32_t device,
                            std::uint64_t charged, std::uint64_t actual) {
  // The driver may round up (pitch, array alignment): the charge follows what it really took.
  if (actual > charged) ledger_.force_charge(slot_, device, actual - charged);
  if (actual < charged) ledger_.release(slot_, device, charged - actual);
  allocations_.insert(kind, handle, Allocation{device, actual, 0});
}

std::optional<Allocation> ProcessAccount::take(AllocKind kind, std::uint64_t handle) {
  return allocations_.erase(kind, handle);
}

void ProcessAccount::credit(const Allocation& a) { ledger_.release(slot_, a.device, a.bytes); }

void ProcessAccount::restore(AllocKind kind, std::uint64_t handle, const Allocation& a) {
  allocations_.insert(kind, handle, a);
}

void ProcessAccount::recharge(Pool& p, std::uint64_t want) {
  if (want > p.charged) ledger_.force_charge(slot_, p.device, want - p.charged);
  if (want < p.charged) ledger_.release(slot_, p.device, p.charged - want);
  p.charged = want;
}

Admission ProcessAccount::pool_reserve(std::uint32_t device, std::uint64_t pool,
                                       std::uint64_t bytes) {
  std::lock_guard lock(mu_);
  Pool& p = pools_[pool];
  p.device = device;
  // Memory the pool already holds (reserved but not handed out) is reused without growing the
  // device footprint: only the part beyond the current charge needs admission.
  const std::uint64_t need = p.outstanding + bytes;
  const std::uint64_t growth = need > p.charged ? need - p.charged : 0;
  if (growth > 0 && ledger_.reserve(group_, slot_, device, growth) == Admission::over_quota)
    return Admission::over_quota;
  p.charged += growth;
  p.outstanding += bytes;
  return Admission::admitted;
}

void ProcessAccount::pool_cancel(std::uint64_t pool, std::uint64_t bytes) {
  std::lock_guard lock(mu_);
  auto it = pools_.find(pool);
  if (it == pools_.end()) return;
  Pool& p = it->second;
  p.outstanding = p.outstanding >= bytes ? p.outstanding - bytes : 0;
  recharge(p, std::max(p.outstanding, p.reserved));
}

void ProcessAccount::pool_commit(std::uint64_t pointer, std::uint64_t pool, std::uint64_t bytes) {
  std::uint32_t device = 0;
  {
    std::lock_guard lock(mu_);
    device = pools_[pool].device;
  }
  allocations_.insert(AllocKind::async_pointer, pointer, Allocation{device, bytes, pool});
}

std::optional<Allocation> ProcessAccount::pool_take(std::uint64_t pointer) {
  return allocations_.erase(AllocKind::async_pointer, pointer);
}

void ProcessAccount::pool_credit(const Allocation& a) {
  std::lock_guard lock(mu_);
  auto it = pools_.find(a.pool);
  if (it == pools_.end()) return;
  Pool& p = it->second;
  p.outstanding = p.outstanding >= a.bytes ? p.outstanding - a.bytes : 0;
  // The bytes return to the pool, not to the device: the charge stays until pool_settle()
  // sees the pool's reservation shrink.
}

void ProcessAccount::pool_restore(std::uint64_t pointer, const Allocation& a) {
  allocations_.insert(AllocKind::async_pointer, pointer, a);
}

void ProcessAccount::pool_settle(std::uint64_t pool, std::uint64_t reserved_now) {
  std::lock_guard lock(mu_);
  auto it = pools_.find(pool);
  if (it == pools_.end()) return;
  Pool& p = it->second;
  p.reserved = reserved_now;
  recharge(p, std::max(p.outstanding, p.reserved));
}

void ProcessAccount::pool_forget(std::uint64_t pool) {
  std::lock_guard lock(mu_);
  auto it = pools_.find(pool);
  if (it == pools_.end()) return;
  recharge(it->second, 0);
  pools_.erase(it);
  // Pointers still recorded for this pool are forgotten lazily: pool_credit ignores them.
}

void ProcessAccount::settle_graph_memory(std::uint32_t device, std::uint64_t reserved_now) {
  if (device >= kMaxDevices) return;
  std::lock_guard lock(mu_);
  std::uint64_t& have = graph_charged_[device];
  if (reserved_now > have) ledger_.force_charge(slot_, device, reserved_now - have);
  if (reserved_now < have) ledger_.release(slot_, device, have - reserved_now);
  have = reserved_now;
}

void ProcessAccount::add_context_footprint(std::uint32_t device, std::uint64_t bytes) {
  ledger_.force_charge(slot_, device, bytes);
}

void ProcessAccount::remove_context_footprint(std::uint32_t device, std::uint64_t bytes) {
  ledger_.release(slot_, device, bytes);
}

}  // namespace xpu::memquota
