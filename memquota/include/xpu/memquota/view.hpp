// The memory a process under a quota is told about (cuMemGetInfo, cuDeviceTotalMem, NVML).
// Pure arithmetic, saturating: "free" never exceeds what the device really has, never goes
// negative when usage is above the quota, and "total" is the quota itself.
#pragma once

#include <algorithm>
#include <cstdint>

namespace xpu::memquota {

struct MemoryView {
  std::uint64_t free = 0;
  std::uint64_t total = 0;
  std::uint64_t used = 0;  // total - free, as NVML reports it
};

inline MemoryView virtual_view(std::uint64_t quota, std::uint64_t group_used,
                               std::uint64_t real_free) {
  const std::uint64_t room = quota > group_used ? quota - group_used : 0;
  const std::uint64_t free = std::min(room, real_free);
  return MemoryView{free, quota, quota - free};
}

// Pitched allocations: the driver rounds each row up; before the call we only know the width,
// so admission charges rows rounded up to this alignment, then settles to pitch * height.
inline constexpr std::uint64_t kPitchAlignment = 512;

inline std::uint64_t pitched_bytes(std::uint64_t width, std::uint64_t height) {
  const std::uint64_t row = (width + kPitchAlignment - 1) / kPitchAlignment * kPitchAlignment;
  return row * height;
}

}  // namespace xpu::memquota
