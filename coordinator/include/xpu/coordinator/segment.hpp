// A process's handle on the node segment (layout.hpp): attach or create it, register this
// process, its group and its devices, and reap slots of processes that died.
//
// No daemon: the first process creates the segment; every process is both client and janitor.
// Liveness is an open-file-description (OFD) lock per slot on the segment file, so it survives
// PID namespaces and is released by the kernel on SIGKILL. Reaping costs one fcntl per slot and
// runs only on slow paths (a refused allocation, a memory query, xpu-run status), never on the
// launch or allocation fast path.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "xpu/common/result.hpp"
#include "xpu/common/uuid.hpp"
#include "xpu/coordinator/layout.hpp"

namespace xpu::coordinator {

struct ProcessIdentity {
  std::uint32_t pid = 0;
  std::uint32_t uid = 0;
  std::uint64_t start_time_ticks = 0;
  std::string comm;
  static ProcessIdentity current();
};

// What status shows of a process's compute settings (see SlotEntry).
struct SlotCompute {
  bool arbitrated = false;
  std::uint8_t percent = 0;   // 0 = none set
  std::uint8_t mode = 0;      // ComputeMode
  std::uint8_t priority = 1;  // xpu::Priority (normal)
};

class NodeSegment {
 public:
  // Opens /dev/shm/<name>, creating and initialising it when absent. Refuses a segment of
  // another layout version or another owner with a message that says what to do.
  static Result<std::unique_ptr<NodeSegment>> open(const std::string& name);
  // Opens an existing segment for reading only (xpu-run status); never creates one.
  static Result<std::unique_ptr<NodeSegment>> open_existing(const std::string& name);
  ~NodeSegment();
  NodeSegment(const NodeSegment&) = delete;
  NodeSegment& operator=(const NodeSegment&) = delete;

  NodeLayout& layout() { return *layout_; }
  // The compute schedule of a registered device (index from device_index).
  timeslice::DeviceSchedule& schedule(std::uint32_t device) {
    return layout_->schedules[device % kMaxDevices];
  }
  const std::string& name() const { return name_; }

  // The device's index in the segment, registering it on first sight.
  Result<std::uint32_t> device_index(const Uuid& uuid, std::uint64_t physical_bytes);

  // Claims a slot for this process and joins (or creates) the named group.
  Result<std::uint32_t> claim_slot(std::string_view group_name, const ProcessIdentity& me,
                                   const SlotCompute& compute = {});
  std::optional<std::uint32_t> own_slot() const { return slot_; }
  std::uint32_t own_group() const { return group_; }

  // Records this group's quota on a device; all live members must agree.
  // nullopt = no quota. Fails on disagreement (conflicting settings).
  Status set_group_quota(std::uint32_t device, std::optional<std::uint64_t> quota);

  // Frees the slots of dead processes (their memory returns to their groups). Returns how many.
  std::size_t reap_dead();
  bool slot_alive(std::uint32_t slot);

  // Normal exit: give the slot back.
  void release_slot();
  // In a forked child: forget the parent's slot and lock without touching them.
  void abandon_after_fork();

  // Group name of a group index (bounds-checked; empty when free or out of range).
  std::string group_name(std::uint32_t group) const;

 private:
  class RegistryLock;
  struct Mapping;  // Boost.Interprocess objects, kept out of this header

  NodeSegment();
  Status map(bool create_allowed);
  Status check_header() const;
  void initialise_locked();
  void repair_locked();
  Result<std::uint32_t> join_group_locked(std::string_view name);
  void leave_group_locked(std::uint32_t group);
  void clear_slot_locked(std::uint32_t slot);
  bool try_lock_byte(std::uint64_t offset) const;
  void unlock_byte(std::uint64_t offset) const;

  std::string name_;
  std::unique_ptr<Mapping> mapping_;
  int fd_ = -1;  // the segment file; carries the OFD locks
  NodeLayout* layout_ = nullptr;
  std::mutex registry_mu_;  // OFD locks do not exclude threads of one process
  std::optional<std::uint32_t> slot_;
  std::uint32_t group_ = kNoGroup;
};

}  // namespace xpu::coordinator
