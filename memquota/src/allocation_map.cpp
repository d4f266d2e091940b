#include "xpu/memquota/allocation_map.hpp"

namespace xpu::memquota {

std::uint64_t AllocationMap::key(AllocKind kind, std::uint64_t handle) {
  // Handles and pointers use the low 60 bits on every supported platform; the kind goes on top.
  return (static_cast<std::uint64_t>(kind) << 60) ^ handle;
}

AllocationMap::Shard& AllocationMap::shard(std::uint64_t k) const {
  // Pointers are aligned; mix the bits so consecutive allocations spread over shards.
  const std::uint64_t h = (k ^ (k >> 21) ^ (k >> 9)) * 0x9e3779b97f4a7c15ULL;
  return shards_[(h >> 59) % kShards];
}

void AllocationMap::insert(AllocKind kind, std::uint64_t handle, Allocation a) {
  const std::uint64_t k = key(kind, handle);
  Shard& s = shard(k);
  std::lock_guard lock(s.mu);
  s.map[k] = a;
}

std::optional<Allocation> AllocationMap::erase(AllocKind kind, std::uint64_t handle) {
  const std::uint64_t k = key(kind, handle);
  Shard& s = shard(k);
  std::lock_guard lock(s.mu);
  auto it = s.map.find(k);
  if (it == s.map.end()) return std::nullopt;
  Allocation a = it->second;
  s.map.erase(it);
  return a;
}

std::optional<Allocation> AllocationMap::find(AllocKind kind, std::uint64_t handle) const {
  const std::uint64_t k = key(kind, handle);
  Shard& s = shard(k);
  std::lock_guard lock(s.mu);
  auto it = s.map.find(k);
  if (it == s.map.end()) return std::nullopt;
  return it->second;
}

void AllocationMap::clear() {
  for (Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    s.map.clear();
  }
}

}  // namespace xpu::memquota
