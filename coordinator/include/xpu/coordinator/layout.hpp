// The node-wide shared segment: one per node (per user), in /dev/shm, created by the first
// process that needs it and never by a daemon. Everything in it is fixed-size plain data:
// atomics and arrays, zero-initialised = empty, so a process can map it and read it without
// constructing anything, and a process killed at any instant leaves a readable table.
//
// Versioning: `kLayoutMajor` changes whenever any byte of NodeLayout moves (the static_asserts
// below fail first, and say so). A process refuses a segment of another major version with a
// clear message instead of misreading it.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "xpu/common/node_limits.hpp"
#include "xpu/memquota/ledger.hpp"
#include "xpu/timeslice/schedule_table.hpp"

namespace xpu::coordinator {

inline constexpr char kMagic[8] = {'X', 'P', 'U', 'S', 'H', 'I', 'M', '\0'};
inline constexpr std::uint32_t kLayoutMajor = 2;
inline constexpr std::uint32_t kLayoutMinor = 0;

enum class EntryState : std::uint32_t { free = 0, claiming = 1, ready = 2 };

struct SegmentHeader {
  char magic[8];
  std::atomic<std::uint32_t> ready;  // 1 once the creator has written the header
  std::uint32_t layout_major;
  std::uint32_t layout_minor;
  std::uint32_t schedule_version;  // timeslice::kLayoutVersion: the schedules' field meanings
  std::uint64_t segment_bytes;
  std::uint64_t created_unix_ns;
};

// A GPU, keyed by UUID. Entries are claimed once and never freed: a node has few GPUs.
struct DeviceEntry {
  std::atomic<std::uint32_t> state;  // EntryState
  std::uint32_t reserved;
  std::uint8_t uuid[16];
  std::atomic<std::uint64_t> physical_bytes;
};

// A group sharing quotas; recycled when its last member leaves or is reaped.
struct GroupEntry {
  std::atomic<std::uint32_t> state;    // EntryState
  std::atomic<std::uint32_t> members;  // live slots in the group
  char name[64];                       // NUL-terminated; written only while claiming
};

// One process using the shim. Its liveness is a lock on byte `slot_lock_offset(i)` of the
// segment file, held for the process's lifetime and released by the kernel when it dies, in any
// PID namespace.
struct SlotEntry {
  std::atomic<std::uint32_t> state;  // EntryState
  std::atomic<std::uint32_t> group;  // group index; kNoGroup until joined
  std::uint32_t pid;                 // in the process's own PID namespace (for display)
  std::uint32_t uid;
  std::uint64_t start_time_ticks;  // /proc/self/stat field 22, with pid it names the process
  std::uint64_t joined_unix_ns;
  char comm[32];
  // Compute settings, written before the slot is published (for status; the scheduler keeps its
  // own copy in the schedules). `arbitrated` = 1 when the process takes part in compute
  // arbitration; compute_percent 0 = no percentage set (weight 100); ComputeMode; xpu::Priority.
  std::uint8_t arbitrated;
  std::uint8_t compute_percent;
  std::uint8_t compute_mode;
  std::uint8_t priority;
  std::uint8_t reserved[4];
};
inline constexpr std::uint32_t kNoGroup = ~std::uint32_t{0};

// Device, group and slot indices are the same in every table: the ledger's and the schedules'
// rows are indexed by the registry's device / group / slot numbers.
struct NodeLayout {
  SegmentHeader header;
  DeviceEntry devices[kMaxDevices];
  GroupEntry groups[kMaxGroups];
  SlotEntry slots[kMaxSlots];
  memquota::LedgerTable ledger;
  timeslice::DeviceSchedule schedules[kMaxDevices];  // compute arbitration, one per device
};

// Byte offsets of the advisory (OFD) locks on the segment file. The kernel drops them when their
// holder dies, so no lock here can outlive a SIGKILLed process.
//  - the registry lock serialises the rare structural changes (initialising the segment,
//    claiming devices and groups, joining, leaving, reaping); never taken on a fast path;
//  - each slot's lock is its process's liveness.
inline constexpr std::uint64_t kRegistryLockOffset = 0;
inline constexpr std::uint64_t slot_lock_offset(std::uint32_t slot) { return 1 + slot; }

static_assert(std::is_standard_layout_v<NodeLayout>);
static_assert(std::is_trivially_destructible_v<NodeLayout>);
static_assert(std::atomic<std::uint32_t>::is_always_lock_free);
static_assert(sizeof(SegmentHeader) == 40, "bump kLayoutMajor: SegmentHeader changed");
static_assert(sizeof(DeviceEntry) == 32, "bump kLayoutMajor: DeviceEntry changed");
static_assert(sizeof(GroupEntry) == 72, "bump kLayoutMajor: GroupEntry changed");
static_assert(sizeof(SlotEntry) == 72, "bump kLayoutMajor: SlotEntry changed");
static_assert(offsetof(NodeLayout, devices) == 40, "bump kLayoutMajor: NodeLayout changed");
static_assert(offsetof(NodeLayout, ledger) % 8 == 0);
static_assert(offsetof(NodeLayout, schedules) % 64 == 0);
static_assert(offsetof(NodeLayout, schedules) ==
                  (40 + 32 * kMaxDevices + 72 * kMaxGroups + 72 * kMaxSlots +
                   sizeof(memquota::LedgerTable) + 63) /
                      64 * 64,
              "bump kLayoutMajor: NodeLayout changed");
static_assert(sizeof(NodeLayout) ==
                  offsetof(NodeLayout, schedules) + kMaxDevices * sizeof(timeslice::DeviceSchedule),
              "bump kLayoutMajor: NodeLayout changed");
static_assert(timeslice::kMaxSlots == kMaxSlots && timeslice::kMaxGroups == kMaxGroups &&
                  timeslice::kMaxDevices == kMaxDevices,
              "the schedules are indexed by registry numbers");

}  // namespace xpu::coordinator
