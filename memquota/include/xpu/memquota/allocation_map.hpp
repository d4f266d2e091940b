// What this process allocated, so that frees credit the right device and size. Process-local.
//
// Keys are (kind, handle): device pointers, VMM handles and array handles live in different
// number spaces and may collide numerically. A free of an unknown key is not an error here: the
// caller passes it through to the driver untouched (it may predate the shim, or come from an
// import we deliberately do not charge).
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>

namespace xpu::memquota {

enum class AllocKind : std::uint8_t {
  device_pointer,   // cuMemAlloc*, cuMemAllocPitch*, cuMemAllocManaged
  async_pointer,    // cuMemAlloc(FromPool)Async: bytes belong to a pool
  vmm_handle,       // cuMemCreate
  array,            // cuArrayCreate, cuArray3DCreate
  mipmapped_array,  // cuMipmappedArrayCreate
};

struct Allocation {
  std::uint32_t device = 0;  // node device index
  std::uint64_t bytes = 0;
  std::uint64_t pool = 0;  // async_pointer only: the pool the bytes came from
};

class AllocationMap {
 public:
  void insert(AllocKind kind, std::uint64_t handle, Allocation a);
  std::optional<Allocation> erase(AllocKind kind, std::uint64_t handle);
  std::optional<Allocation> find(AllocKind kind, std::uint64_t handle) const;
  // Forget everything (a forked child inherits the parent's map but none of its allocations).
  void clear();

 private:
  // Sharded so that threads allocating concurrently rarely meet on one mutex.
  static constexpr std::size_t kShards = 16;
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<std::uint64_t, Allocation> map;
  };
  static std::uint64_t key(AllocKind kind, std::uint64_t handle);
  Shard& shard(std::uint64_t key) const;
  mutable std::array<Shard, kShards> shards_;
};

}  // namespace xpu::memquota
