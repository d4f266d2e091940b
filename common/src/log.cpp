#include "xpu/common/log.hpp"

#include <unistd.h>

#include <cerrno>

namespace xpu {
namespace log_detail {
std::atomic<std::uint8_t> g_level{static_cast<std::uint8_t>(LogLevel::warn)};

void emit(LogLevel level, fmt::string_view format, fmt::format_args args) noexcept {
  const int saved_errno = errno;  // hooks must not disturb the caller's errno
  char buffer[1024];
  try {
    auto prefix = fmt::format_to_n(buffer, sizeof(buffer) - 1, "xpushim[{}]: {}: ", ::getpid(),
                                   to_string(level));
    const std::size_t used = prefix.size < sizeof(buffer) - 1 ? prefix.size : sizeof(buffer) - 1;
    auto body = fmt::vformat_to_n(buffer + used, sizeof(buffer) - 1 - used, format, args);
    std::size_t n =
        used + (body.size < sizeof(buffer) - 1 - used ? body.size : sizeof(buffer) - 1 - used);
    buffer[n++] = '\n';
    for (std::size_t done = 0; done < n;) {
      const ssize_t w = ::write(STDERR_FILENO, buffer + done, n - done);
      if (w <= 0) break;
      done += static_cast<std::size_t>(w);
    }
  } catch (...) {
    // A formatting failure must never take the host process down; drop the line.
  }
  errno = saved_errno;
}
}  // namespace log_detail

std::string_view to_string(LogLevel level) {
  switch (level) {
    case LogLevel::error:
      return "error";
    case LogLevel::warn:
      return "warn";
    case LogLevel::info:
      return "info";
    case LogLevel::debug:
      return "debug";
  }
  return "?";
}

void set_log_level(LogLevel level) noexcept {
  log_detail::g_level.store(static_cast<std::uint8_t>(level), std::memory_order_relaxed);
}

}  // namespace xpu
