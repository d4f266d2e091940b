// One process's side of the memory quota: turns "the driver was asked for N bytes on device d"
// into ledger operations, remembers what was handed out so frees credit the right amount, and
// keeps the charges that the driver decides for us (pools, graph memory, context footprint)
// equal to what the driver really holds.
//
// Charges per device are the sum of components:
//   direct allocations  + pool charges + graph memory + context footprint
// where a pool's charge is max(bytes handed out, bytes the pool keeps reserved): memory a pool
// keeps after a free is still device memory the process holds.
//
// Plain values only (device = node device index, handles = integers); the CUDA handlers in
// libxpushim translate driver types to these.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "xpu/common/node_limits.hpp"
#include "xpu/memquota/allocation_map.hpp"
#include "xpu/memquota/ledger.hpp"

namespace xpu::memquota {

class ProcessAccount {
 public:
  ProcessAccount(LedgerTable& table, std::uint32_t slot, std::uint32_t group)
      : ledger_(table), slot_(slot), group_(group) {}

  // --- direct allocations (pointers, VMM handles, arrays) ---
  Admission reserve(std::uint32_t device, std::uint64_t bytes);
  void cancel(std::uint32_t device, std::uint64_t bytes);  // the driver call failed
  // The driver succeeded: remember the allocation; `charged` is what reserve() took, `actual`
  // the size the driver really used (pitch, array requirements), settled here.
  void commit(AllocKind kind, std::uint64_t handle, std::uint32_t device, std::uint64_t charged,
              std::uint64_t actual);
  // A free, in two steps around the driver call: take() removes the record first (so a handle
  // the driver reuses at once cannot be confused with the freed one), then credit() after the
  // driver succeeded, or restore() if it failed. take() returns nullopt for unknown handles.
  std::optional<Allocation> take(AllocKind kind, std::uint64_t handle);
  void credit(const Allocation& a);
  void restore(AllocKind kind, std::uint64_t handle, const Allocation& a);

  // --- stream-ordered pools ---
  // Admission for `bytes` from `pool`: only growth beyond what the pool already holds counts.
  Admission pool_reserve(std::uint32_t device, std::uint64_t pool, std::uint64_t bytes);
  void pool_cancel(std::uint64_t pool, std::uint64_t bytes);
  void pool_commit(std::uint64_t pointer, std::uint64_t pool, std::uint64_t bytes);
  // Async frees, same two steps; the bytes stay charged until the pool gives them back.
  std::optional<Allocation> pool_take(std::uint64_t pointer);
  void pool_credit(const Allocation& a);
  void pool_restore(std::uint64_t pointer, const Allocation& a);
  // The driver's current RESERVED_MEM_CURRENT for `pool`: the charge follows it.
  void pool_settle(std::uint64_t pool, std::uint64_t reserved_now);
  void pool_forget(std::uint64_t pool);  // cuMemPoolDestroy
  // Calls f(pool, device) for each tracked pool, outside the lock (f may settle pools).
  template <class F>
  void for_each_pool(F&& f) const {
    std::vector<std::pair<std::uint64_t, std::uint32_t>> pools;
    {
      std::lock_guard lock(mu_);
      for (const auto& [pool, state] : pools_) pools.emplace_back(pool, state.device);
    }
    for (const auto& [pool, device] : pools) f(pool, device);
  }

  // --- memory the driver reserves on its own, per device ---
  void settle_graph_memory(std::uint32_t device, std::uint64_t reserved_now);
  void add_context_footprint(std::uint32_t device, std::uint64_t bytes);
  void remove_context_footprint(std::uint32_t device, std::uint64_t bytes);

  std::uint64_t group_usage(std::uint32_t device) const {
    return ledger_.group_usage(group_, device);
  }
  std::uint64_t own_usage(std::uint32_t device) const { return ledger_.slot_usage(slot_, device); }
  std::uint64_t quota(std::uint32_t device) const { return ledger_.quota(group_, device); }
  std::uint32_t slot() const { return slot_; }

 private:
  struct Pool {
    std::uint32_t device = 0;
    std::uint64_t outstanding = 0;  // handed out and not yet freed
    std::uint64_t reserved = 0;     // last RESERVED_MEM_CURRENT seen
    std::uint64_t charged = 0;      // what the ledger holds for this pool
  };
  void recharge(Pool& p, std::uint64_t want);  // moves p.charged to `want` in the ledger

  Ledger ledger_;
  std::uint32_t slot_;
  std::uint32_t group_;
  AllocationMap allocations_;
  mutable std::mutex mu_;  // pools and per-device components; allocation path only, never launch
  std::unordered_map<std::uint64_t, Pool> pools_;
  std::array<std::uint64_t, kMaxDevices> graph_charged_{};
};

}  // namespace xpu::memquota
