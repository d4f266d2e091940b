// This process's compute gates, one per device it may launch on, and the watcher thread that
// services them. Built by the Runtime when the process takes part in compute arbitration
// (a share, a mode or a priority was set); never destroyed (hooks run until the very end).
//
// The watcher polls completion events and renews the scheduler's leases: every 1 ms while work
// is in flight or the process waits, every 50 ms otherwise, faster while someone waits for our
// queued work to drain. It is started by the first launch, not at initialisation, so a process
// that never launches has no extra thread and never shows up as competing.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>

#include "compute/device_gate.hpp"
#include "xpu/common/node_limits.hpp"

namespace xpu::coordinator {
class NodeSegment;
}

namespace xpu::shim::compute {

class Gates {
 public:
  Gates(coordinator::NodeSegment& segment, std::uint32_t slot, const JoinSpec& spec) noexcept;

  // Registers CUDA ordinal `ordinal` as node device `device`.
  void add_device(int ordinal, std::uint32_t device) noexcept;
  // The gate of the calling thread's current device (nullptr: no context or unknown device).
  DeviceGate* current() noexcept;

  // Every gate leaves its schedule, so the device is handed on at once.
  void leave_all() noexcept;
  // Normal exit (atexit, which runs before the driver's own teardown): leave, and park the
  // watcher outside any driver call so it never touches a driver being unloaded.
  void stop() noexcept;

 private:
  void start_watcher() noexcept;
  void watch() noexcept;

  coordinator::NodeSegment& segment_;
  const std::uint32_t slot_;
  const JoinSpec spec_;
  std::array<std::unique_ptr<DeviceGate>, kMaxDevices> by_ordinal_{};
  int ordinals_ = 0;
  std::atomic<bool> watcher_started_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> servicing_{false};
};

}  // namespace xpu::shim::compute
