#include "xpu/coordinator/segment.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "xpu/common/log.hpp"
#include "xpu/memquota/ledger.hpp"

namespace bip = boost::interprocess;

namespace xpu::coordinator {

struct NodeSegment::Mapping {
  bip::shared_memory_object shm;
  bip::mapped_region region;
};

// Holds the registry lock: an in-process mutex (OFD locks do not exclude threads that share the
// file description) plus a blocking OFD write lock on the registry byte.
class NodeSegment::RegistryLock {
 public:
  explicit RegistryLock(NodeSegment& seg) : seg_(seg), guard_(seg.registry_mu_) {
    struct flock fl {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = static_cast<off_t>(kRegistryLockOffset);
    fl.l_len = 1;
    while (::fcntl(seg_.fd_, F_OFD_SETLKW, &fl) != 0 && errno == EINTR) {
    }
  }
  ~RegistryLock() { seg_.unlock_byte(kRegistryLockOffset); }
  RegistryLock(const RegistryLock&) = delete;
  RegistryLock& operator=(const RegistryLock&) = delete;

 private:
  NodeSegment& seg_;
  std::lock_guard<std::mutex> guard_;
};

namespace {

std::uint64_t unix_ns() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

void copy_name(char* dst, std::size_t cap, std::string_view src) {
  const std::size_t n = std::min(cap - 1, src.size());
  std::memcpy(dst, src.data(), n);
  dst[n] = '\0';
}

std::string_view bounded_name(const char* s, std::size_t cap) {
  return std::string_view(s, ::strnlen(s, cap));
}

}  // namespace

ProcessIdentity ProcessIdentity::current() {
  ProcessIdentity id;
  id.pid = static_cast<std::uint32_t>(::getpid());
  id.uid = static_cast<std::uint32_t>(::getuid());
  std::ifstream stat("/proc/self/stat");
  std::string line;
  if (std::getline(stat, line)) {
    const auto open = line.find('(');
    const auto close = line.rfind(')');
    if (open != std::string::npos && close != std::string::npos && close > open) {
      id.comm = line.substr(open + 1, close - open - 1);
      std::istringstream rest(line.substr(close + 2));
      std::string field;
      // Fields after "(comm)" start at field 3; starttime is field 22.
      for (int i = 3; i <= 22 && (rest >> field); ++i) {
        if (i == 22) id.start_time_ticks = std::strtoull(field.c_str(), nullptr, 10);
      }
    }
  }
  return id;
}

NodeSegment::NodeSegment() = default;

NodeSegment::~NodeSegment() = default;  // the mapping and fd close; the slot lock goes with them

bool NodeSegment::try_lock_byte(std::uint64_t offset) const {
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = static_cast<off_t>(offset);
  fl.l_len = 1;
  return ::fcntl(fd_, F_OFD_SETLK, &fl) == 0;
}

void NodeSegment::unlock_byte(std::uint64_t offset) const {
  struct flock fl {};
  fl.l_type = F_UNLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = static_cast<off_t>(offset);
  fl.l_len = 1;
  ::fcntl(fd_, F_OFD_SETLK, &fl);
}

Result<std::unique_ptr<NodeSegment>> NodeSegment::open(const std::string& name) {
  std::unique_ptr<NodeSegment> seg(new NodeSegment());
  seg->name_ = name;
  if (auto s = seg->map(true); !s) return s.error();
  return seg;
}

Result<std::unique_ptr<NodeSegment>> NodeSegment::open_existing(const std::string& name) {
  std::unique_ptr<NodeSegment> seg(new NodeSegment());
  seg->name_ = name;
  if (auto s = seg->map(false); !s) return s.error();
  return seg;
}

Status NodeSegment::map(bool create_allowed) {
  const std::string path = "/dev/shm/" + name_;
  auto m = std::make_unique<Mapping>();
  bool created = false;
  try {
    if (create_allowed) {
      try {
        m->shm = bip::shared_memory_object(bip::create_only, name_.c_str(), bip::read_write,
                                           bip::permissions(0600));
        created = true;
      } catch (const bip::interprocess_exception& e) {
        if (e.get_error_code() != bip::already_exists_error) throw;
        m->shm = bip::shared_memory_object(bip::open_only, name_.c_str(), bip::read_write);
      }
    } else {
      m->shm = bip::shared_memory_object(bip::open_only, name_.c_str(), bip::read_write);
    }
  } catch (const bip::interprocess_exception& e) {
    const bool denied = e.get_native_error() == EACCES || e.get_native_error() == EPERM;
    return make_error(Errc::unavailable,
                      fmt::format("cannot open the node segment {}: {}{}", path, e.what(),
                                  denied ? " (it belongs to another user; set XPU_NODE_SEGMENT "
                                           "to use a segment of your own)"
                                         : ""));
  }
  fd_ = m->shm.get_mapping_handle().handle;
  if (created) ::fchmod(fd_, 0600);  // shm_open's mode is filtered by the umask
  mapping_ = std::move(m);

  {
    RegistryLock lock(*this);
    bip::offset_t size = 0;
    mapping_->shm.get_size(size);
    const auto want = static_cast<bip::offset_t>(sizeof(NodeLayout));
    if (size == 0) {
      // Created just now, or its creator died before sizing it: we initialise it.
      mapping_->shm.truncate(want);
      size = want;
    }
    if (size < static_cast<bip::offset_t>(sizeof(SegmentHeader)))
      return make_error(Errc::incompatible,
                        fmt::format("the node segment {} is too small to be an xpushim segment; "
                                    "remove it when no xpushim process runs, or set "
                                    "XPU_NODE_SEGMENT",
                                    path));
    try {
      mapping_->region =
          bip::mapped_region(mapping_->shm, bip::read_write, 0, static_cast<std::size_t>(size));
    } catch (const bip::interprocess_exception& e) {
      return make_error(Errc::unavailable, fmt::format("cannot map {}: {}", path, e.what()));
    }
    layout_ = static_cast<NodeLayout*>(mapping_->region.get_address());
    if (layout_->header.ready.load(std::memory_order_acquire) == 0) {
      if (size != want)
        return make_error(Errc::incompatible,
                          fmt::format("the node segment {} is half-initialised and of another "
                                      "size; remove it when no xpushim process runs",
                                      path));
      initialise_locked();
    } else {
      repair_locked();
    }
  }
  return check_header();
}

void NodeSegment::initialise_locked() {
  // Pages of a new shm object are zero; zero again in case a creator died half-way.
  std::memset(static_cast<void*>(layout_), 0, sizeof(NodeLayout));
  std::memcpy(layout_->header.magic, kMagic, sizeof(kMagic));
  layout_->header.layout_major = kLayoutMajor;
  layout_->header.layout_minor = kLayoutMinor;
  layout_->header.schedule_version = timeslice::kLayoutVersion;
  layout_->header.segment_bytes = sizeof(NodeLayout);
  layout_->header.created_unix_ns = unix_ns();
  for (auto& slot : layout_->slots) slot.group.store(kNoGroup, std::memory_order_relaxed);
  layout_->header.ready.store(1, std::memory_order_release);
}

void NodeSegment::repair_locked() {
  if (check_header().ok() == false) return;
  // We hold the registry lock, so nobody is mid-claim: a `claiming` entry was left by a process
  // that died inside the registry. Give it back.
  for (auto& d : layout_->devices) {
    std::uint32_t claiming = static_cast<std::uint32_t>(EntryState::claiming);
    d.state.compare_exchange_strong(claiming, static_cast<std::uint32_t>(EntryState::free));
  }
  for (auto& g : layout_->groups) {
    std::uint32_t claiming = static_cast<std::uint32_t>(EntryState::claiming);
    if (g.state.compare_exchange_strong(claiming, static_cast<std::uint32_t>(EntryState::free)))
      g.members.store(0);
  }
}

Status NodeSegment::check_header() const {
  const SegmentHeader& h = layout_->header;
  const std::string path = "/dev/shm/" + name_;
  if (std::memcmp(h.magic, kMagic, sizeof(kMagic)) != 0)
    return make_error(Errc::incompatible,
                      fmt::format("{} is not an xpushim node segment (bad magic); set "
                                  "XPU_NODE_SEGMENT to another name",
                                  path));
  if (h.layout_major != kLayoutMajor || h.segment_bytes != sizeof(NodeLayout) ||
      h.schedule_version != timeslice::kLayoutVersion)
    return make_error(
        Errc::incompatible,
        fmt::format("{} has segment layout {}.{}/s{} ({} bytes) but this xpushim uses {}.{}/s{} "
                    "({} bytes); refusing to misread it. Stop the xpushim processes of the other "
                    "version (or remove {} when none run), or set XPU_NODE_SEGMENT",
                    path, h.layout_major, h.layout_minor, h.schedule_version, h.segment_bytes,
                    kLayoutMajor, kLayoutMinor, timeslice::kLayoutVersion, sizeof(NodeLayout),
                    path));
  return Ok{};
}

Result<std::uint32_t> NodeSegment::device_index(const Uuid& uuid, std::uint64_t physical_bytes) {
  // Fast path without the lock: devices are never freed, and a ready entry's UUID never changes.
  for (std::uint32_t i = 0; i < kMaxDevices; ++i) {
    const DeviceEntry& d = layout_->devices[i];
    if (d.state.load(std::memory_order_acquire) == static_cast<std::uint32_t>(EntryState::ready) &&
        std::memcmp(d.uuid, uuid.bytes.data(), 16) == 0)
      return i;
  }
  RegistryLock lock(*this);
  std::optional<std::uint32_t> free;
  for (std::uint32_t i = 0; i < kMaxDevices; ++i) {
    DeviceEntry& d = layout_->devices[i];
    const auto st = d.state.load(std::memory_order_acquire);
    if (st == static_cast<std::uint32_t>(EntryState::ready) &&
        std::memcmp(d.uuid, uuid.bytes.data(), 16) == 0)
      return i;
    if (st == static_cast<std::uint32_t>(EntryState::free) && !free) free = i;
  }
  if (!free)
    return make_error(Errc::exhausted, fmt::format("the node segment's device table is full "
                                                   "({} devices)",
                                                   kMaxDevices));
  DeviceEntry& d = layout_->devices[*free];
  d.state.store(static_cast<std::uint32_t>(EntryState::claiming), std::memory_order_relaxed);
  std::memcpy(d.uuid, uuid.bytes.data(), 16);
  d.physical_bytes.store(physical_bytes, std::memory_order_relaxed);
  d.state.store(static_cast<std::uint32_t>(EntryState::ready), std::memory_order_release);
  return *free;
}

Result<std::uint32_t> NodeSegment::claim_slot(std::string_view group_name,
                                              const ProcessIdentity& me,
                                              const SlotCompute& compute) {
  for (int pass = 0; pass < 2; ++pass) {
    for (std::uint32_t i = 0; i < kMaxSlots; ++i) {
      SlotEntry& s = layout_->slots[i];
      if (s.state.load(std::memory_order_acquire) != static_cast<std::uint32_t>(EntryState::free))
        continue;
      if (!try_lock_byte(slot_lock_offset(i))) continue;  // someone is claiming it right now
      // The slot lock is ours from here until this process exits.
      RegistryLock lock(*this);
      if (s.state.load() != static_cast<std::uint32_t>(EntryState::free)) {
        unlock_byte(slot_lock_offset(i));  // taken between our look and our lock
        continue;
      }
      s.state.store(static_cast<std::uint32_t>(EntryState::claiming));
      s.pid = me.pid;
      s.uid = me.uid;
      s.start_time_ticks = me.start_time_ticks;
      s.joined_unix_ns = unix_ns();
      copy_name(s.comm, sizeof(s.comm), me.comm);
      s.arbitrated = compute.arbitrated ? 1 : 0;
      s.compute_percent = compute.percent;
      s.compute_mode = compute.mode;
      s.priority = compute.priority;
      auto group = join_group_locked(group_name);
      if (!group) {
        s.state.store(static_cast<std::uint32_t>(EntryState::free));
        unlock_byte(slot_lock_offset(i));
        return group.error();
      }
      s.group.store(group.value());
      memquota::Ledger(layout_->ledger).attach_slot(i, group.value());
      s.state.store(static_cast<std::uint32_t>(EntryState::ready), std::memory_order_release);
      slot_ = i;
      group_ = group.value();
      return i;
    }
    if (reap_dead() == 0) break;
  }
  return make_error(Errc::exhausted,
                    fmt::format("the node segment has no free process slot ({} processes use "
                                "xpushim on this node)",
                                kMaxSlots));
}

Result<std::uint32_t> NodeSegment::join_group_locked(std::string_view name) {
  std::optional<std::uint32_t> free;
  for (std::uint32_t g = 0; g < kMaxGroups; ++g) {
    GroupEntry& e = layout_->groups[g];
    const auto st = e.state.load();
    if (st == static_cast<std::uint32_t>(EntryState::ready) &&
        bounded_name(e.name, sizeof(e.name)) == name) {
      e.members.fetch_add(1);
      return g;
    }
    if (st == static_cast<std::uint32_t>(EntryState::free) && !free) free = g;
  }
  if (!free)
    return make_error(
        Errc::exhausted,
        fmt::format("the node segment's group table is full ({} groups)", kMaxGroups));
  GroupEntry& e = layout_->groups[*free];
  e.state.store(static_cast<std::uint32_t>(EntryState::claiming));
  copy_name(e.name, sizeof(e.name), name);
  for (std::uint32_t d = 0; d < kMaxDevices; ++d)
    layout_->ledger.quota[*free][d].store(memquota::kQuotaUnset);
  e.members.store(1);
  e.state.store(static_cast<std::uint32_t>(EntryState::ready), std::memory_order_release);
  return *free;
}

void NodeSegment::leave_group_locked(std::uint32_t group) {
  if (group >= kMaxGroups) return;  // a corrupted index must not take us out of bounds
  GroupEntry& e = layout_->groups[group];
  std::uint32_t m = e.members.load();
  while (m > 0 && !e.members.compare_exchange_weak(m, m - 1)) {
  }
  if (m <= 1) e.state.store(static_cast<std::uint32_t>(EntryState::free));
}

void NodeSegment::clear_slot_locked(std::uint32_t slot) {
  SlotEntry& s = layout_->slots[slot];
  memquota::Ledger(layout_->ledger).detach_slot(slot);
  const std::uint32_t group = s.group.exchange(kNoGroup);
  leave_group_locked(group);
  s.state.store(static_cast<std::uint32_t>(EntryState::free), std::memory_order_release);
}

Status NodeSegment::set_group_quota(std::uint32_t device, std::optional<std::uint64_t> quota) {
  if (device >= kMaxDevices || group_ >= kMaxGroups)
    return make_error(Errc::internal, "set_group_quota before claim_slot");
  const std::uint64_t want = quota ? *quota : memquota::kUnlimited;
  RegistryLock lock(*this);
  std::atomic<std::uint64_t>& cell = layout_->ledger.quota[group_][device];
  std::uint64_t have = memquota::kQuotaUnset;
  if (cell.compare_exchange_strong(have, want) || have == want) return Ok{};
  auto show = [](std::uint64_t q) {
    return q == memquota::kUnlimited ? std::string("no quota") : fmt::format("{} bytes", q);
  };
  return make_error(Errc::invalid_config,
                    fmt::format("conflicting settings: group '{}' already has {} on this device "
                                "but this process asks for {}; give every member of a group the "
                                "same memory quota",
                                group_name(group_), show(have), show(want)));
}

bool NodeSegment::slot_alive(std::uint32_t slot) {
  if (slot >= kMaxSlots) return false;
  if (slot_ && *slot_ == slot) return true;
  if (!try_lock_byte(slot_lock_offset(slot))) return true;
  unlock_byte(slot_lock_offset(slot));
  return false;
}

std::size_t NodeSegment::reap_dead() {
  std::size_t reaped = 0;
  for (std::uint32_t i = 0; i < kMaxSlots; ++i) {
    if (slot_ && *slot_ == i) continue;  // our own lock would not conflict with us
    if (layout_->slots[i].state.load(std::memory_order_acquire) ==
        static_cast<std::uint32_t>(EntryState::free))
      continue;
    if (!try_lock_byte(slot_lock_offset(i))) continue;  // its owner is alive
    {
      RegistryLock lock(*this);
      if (layout_->slots[i].state.load() != static_cast<std::uint32_t>(EntryState::free)) {
        clear_slot_locked(i);
        ++reaped;
      }
    }
    unlock_byte(slot_lock_offset(i));
  }
  if (reaped > 0) log(LogLevel::debug, "reaped {} slot(s) of exited processes", reaped);
  return reaped;
}

void NodeSegment::release_slot() {
  if (!slot_) return;
  {
    RegistryLock lock(*this);
    clear_slot_locked(*slot_);
  }
  unlock_byte(slot_lock_offset(*slot_));
  slot_.reset();
  group_ = kNoGroup;
}

void NodeSegment::abandon_after_fork() {
  // The child shares the parent's open file description: unlocking through it would release
  // the parent's liveness lock. Close our reference only; the parent's lock stays held.
  slot_.reset();
  group_ = kNoGroup;
  ::close(fd_);
  fd_ = -1;
}

std::string NodeSegment::group_name(std::uint32_t group) const {
  if (group >= kMaxGroups) return {};
  const GroupEntry& e = layout_->groups[group];
  if (e.state.load() != static_cast<std::uint32_t>(EntryState::ready)) return {};
  return std::string(bounded_name(e.name, sizeof(e.name)));
}

}  // namespace xpu::coordinator
