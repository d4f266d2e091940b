// Logging for a library that lives inside someone else's process.
//
// Messages go to stderr with a "xpushim[pid]: level:" prefix through a single write(2), formatted
// into a bounded stack buffer: no allocation, no iostreams, no locks, safe from any thread and
// from hooks. The default level is `warn`, so a healthy process prints nothing; configuration
// errors are always printed. log_once() keeps repeated internal faults to one line per site.
#pragma once

#include <fmt/format.h>

#include <atomic>
#include <cstdint>
#include <string_view>

namespace xpu {

enum class LogLevel : std::uint8_t { error = 0, warn = 1, info = 2, debug = 3 };

std::string_view to_string(LogLevel level);

namespace log_detail {
extern std::atomic<std::uint8_t> g_level;
void emit(LogLevel level, fmt::string_view format, fmt::format_args args) noexcept;
}  // namespace log_detail

void set_log_level(LogLevel level) noexcept;
inline bool log_enabled(LogLevel level) noexcept {
  return static_cast<std::uint8_t>(level) <= log_detail::g_level.load(std::memory_order_relaxed);
}

template <class... Args>
void log(LogLevel level, fmt::format_string<Args...> format, Args&&... args) noexcept {
  if (!log_enabled(level)) return;
  log_detail::emit(level, format, fmt::make_format_args(args...));
}

// Logs the first time a given call site fires; `once` is a static flag at the call site.
template <class... Args>
void log_once(std::atomic<bool>& once, LogLevel level, fmt::format_string<Args...> format,
              Args&&... args) noexcept {
  if (once.exchange(true, std::memory_order_relaxed)) return;
  log(level, format, std::forward<Args>(args)...);
}

}  // namespace xpu
