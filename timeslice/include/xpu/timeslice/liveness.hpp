// The injected "is the process in this slot still alive?" predicate. The coordinator answers it
// with per-slot file locks (works across PID namespaces); it may cost a system call, so the
// scheduler asks only about slots whose heartbeat went stale, never on the launch path.
#pragma once

#include <cstdint>

namespace xpu::timeslice {

class Liveness {
 public:
  using Fn = bool (*)(void* ctx, std::uint32_t slot) noexcept;

  /// Without a predicate every slot counts as alive: stale slots are then never reclaimed, but a
  /// dead holder or waiter still cannot block anyone (that relies on leases, not on this
  /// predicate).
  constexpr Liveness() noexcept = default;
  constexpr Liveness(Fn fn, void* ctx) noexcept : fn_(fn), ctx_(ctx) {}

  bool operator()(std::uint32_t slot) const noexcept { return fn_ == nullptr || fn_(ctx_, slot); }

 private:
  Fn fn_ = nullptr;
  void* ctx_ = nullptr;
};

}  // namespace xpu::timeslice
