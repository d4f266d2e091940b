// The device-memory ledger: how many bytes each process slot has charged on each device, and each
// group's quota per device. It is plain data meant to live in the node-wide shared segment (the
// coordinator places it there); unit tests place it in ordinary memory.
//
// Admission is one atomic step, without locks, so a process killed at any instant can neither
// leak nor deadlock anything:
//   1. add the request to this slot's counter (one atomic RMW),
//   2. sum the counters of every slot of the group,
//   3. over the quota: take the request back out and report over-quota.
// With sequentially consistent operations, of two concurrent requests the later add is seen by
// the other's sum, so two requests that together exceed the quota can never both pass. A dead
// process's bytes are exactly its slot counters, which the coordinator zeroes when it reaps it.
#pragma once

#include <atomic>
#include <cstdint>

#include "xpu/common/node_limits.hpp"

namespace xpu::memquota {

// A quota cell: 0 = not configured yet; kUnlimited = explicitly no quota; otherwise bytes.
inline constexpr std::uint64_t kQuotaUnset = 0;
inline constexpr std::uint64_t kUnlimited = ~std::uint64_t{0};

struct LedgerTable {
  std::atomic<std::uint64_t> quota[kMaxGroups][kMaxDevices];
  // group index + 1 while the slot belongs to a group; 0 for a free slot.
  std::atomic<std::uint16_t> slot_group[kMaxSlots];
  // Dense per device, so a group sum reads a few contiguous cache lines.
  std::atomic<std::uint64_t> charged[kMaxDevices][kMaxSlots];
};

static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
static_assert(std::atomic<std::uint16_t>::is_always_lock_free);
static_assert(std::is_standard_layout_v<LedgerTable>);
static_assert(sizeof(LedgerTable) ==
                  8 * kMaxGroups * kMaxDevices + 2 * kMaxSlots + 8 * kMaxDevices * kMaxSlots,
              "LedgerTable layout changed: bump the coordinator's segment layout version");

enum class Admission { admitted, over_quota };

// Operations on a LedgerTable. Indices are trusted here: the coordinator validates every index
// it reads from the segment before it reaches these functions.
class Ledger {
 public:
  explicit Ledger(LedgerTable& table) : t_(table) {}

  // Reserves `bytes` for `slot` of `group` on `device`, or refuses if the group would exceed
  // its quota. A refusal caused only by other slots' in-flight reservations is retried.
  Admission reserve(std::uint32_t group, std::uint32_t slot, std::uint32_t device,
                    std::uint64_t bytes);
  // Charges without a check: memory the driver already handed out (context footprint,
  // graph memory observed after a launch). It still counts against later requests.
  void force_charge(std::uint32_t slot, std::uint32_t device, std::uint64_t bytes);
  // Credits `bytes` back; never goes below zero.
  void release(std::uint32_t slot, std::uint32_t device, std::uint64_t bytes);

  std::uint64_t group_usage(std::uint32_t group, std::uint32_t device) const;
  std::uint64_t slot_usage(std::uint32_t slot, std::uint32_t device) const;
  std::uint64_t quota(std::uint32_t group, std::uint32_t device) const;

  // Membership: a slot's bytes count for its group from attach to detach.
  void attach_slot(std::uint32_t slot, std::uint32_t group);
  // Forgets everything the slot charged (its process exited or was reaped).
  void detach_slot(std::uint32_t slot);

 private:
  LedgerTable& t_;
};

}  // namespace xpu::memquota
