// CLOCK_MONOTONIC for test programs that start together (the scheduler's clock too): now, and a
// sleep until an absolute instant that survives signals.
#pragma once

#include <time.h>

#include <cerrno>
#include <cstdint>

namespace xpu::test {

inline std::uint64_t mono_now() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ULL +
         static_cast<std::uint64_t>(ts.tv_nsec);
}

inline void sleep_until(std::uint64_t t) {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(t / 1'000'000'000ULL);
  ts.tv_nsec = static_cast<long>(t % 1'000'000'000ULL);
  while (::clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

}  // namespace xpu::test
