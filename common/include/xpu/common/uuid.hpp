// A GPU UUID: 16 bytes as cuDeviceGetUuid returns them, written "GPU-xxxxxxxx-xxxx-xxxx-xxxx-
// xxxxxxxxxxxx" as NVML and nvidia-smi print them. Quotas are keyed by UUID because CUDA ordinals
// differ between processes under CUDA_VISIBLE_DEVICES.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace xpu {

struct Uuid {
  std::array<std::uint8_t, 16> bytes{};
  friend bool operator==(const Uuid&, const Uuid&) = default;
  bool is_zero() const {
    for (auto b : bytes)
      if (b != 0) return false;
    return true;
  }
};

std::string to_string(const Uuid& uuid);                // "GPU-8f3c1a2b-...."
std::optional<Uuid> parse_uuid(std::string_view text);  // accepts the "GPU-" form only

}  // namespace xpu
