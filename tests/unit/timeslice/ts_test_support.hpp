// Shared bits of the timeslice tests: the Catch2 v2/v3 Approx alias, time units, verbose printing.
#pragma once

#include <cstdio>
#include <cstdlib>

#include "xpu/timeslice/types.hpp"
#include "xpu_catch.hpp"

namespace xpu::timeslice::test {

#if defined(XPU_CATCH2_V3)
using Approx = Catch::Approx;
#else
using Approx = ::Approx;
#endif

inline constexpr Nanos kUs = 1'000;
inline constexpr Nanos kMs = 1'000'000;
inline constexpr Nanos kS = 1'000'000'000;

/// XPU_TS_VERBOSE=1 prints the measured figures (shares, efficiency, latencies) of the sim tests.
inline bool verbose() {
  static const bool on = [] {
    const char* v = std::getenv("XPU_TS_VERBOSE");
    return v != nullptr && v[0] == '1';
  }();
  return on;
}

#define XPU_TS_REPORT(...)                   \
  do {                                       \
    if (::xpu::timeslice::test::verbose()) { \
      std::printf(__VA_ARGS__);              \
      std::printf("\n");                     \
    }                                        \
  } while (0)

}  // namespace xpu::timeslice::test
