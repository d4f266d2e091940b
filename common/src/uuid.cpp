#include "xpu/common/uuid.hpp"

#include <fmt/format.h>

namespace xpu {

std::string to_string(const Uuid& uuid) {
  std::string hex;
  hex.reserve(36);
  for (std::size_t i = 0; i < uuid.bytes.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) hex.push_back('-');
    hex += fmt::format("{:02x}", uuid.bytes[i]);
  }
  return "GPU-" + hex;
}

std::optional<Uuid> parse_uuid(std::string_view text) {
  if (text.substr(0, 4) != "GPU-") return std::nullopt;
  text.remove_prefix(4);
  if (text.size() != 36) return std::nullopt;
  Uuid uuid;
  std::size_t out = 0;
  for (std::size_t i = 0; i < text.size();) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (text[i] != '-') return std::nullopt;
      ++i;
      continue;
    }
    auto nibble = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    const int hi = nibble(text[i]);
    const int lo = nibble(text[i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    uuid.bytes[out++] = static_cast<std::uint8_t>(hi * 16 + lo);
    i += 2;
  }
  return uuid;
}

}  // namespace xpu
