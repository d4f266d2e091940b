// A read-only snapshot of a device's schedule for `xpu-run status`.
#pragma once

#include <cstdint>
#include <vector>

#include "xpu/timeslice/schedule_table.hpp"
#include "xpu/timeslice/tunables.hpp"
#include "xpu/timeslice/types.hpp"

namespace xpu::timeslice {

struct SlotStatus {
  std::uint32_t slot = 0;
  std::uint32_t group = 0;
  std::uint32_t share_percent = 0;
  Mode mode = Mode::kShare;
  Priority priority = Priority::kNormal;
  bool holder = false;             // its group holds the device now
  bool waiting = false;            // it waits for the device
  bool busy = false;               // it has work launching or in flight
  double delivered_share = 0.0;    // its part of all GPU time charged on the device, last 2-4 s
  double gpu_utilization = 0.0;    // its GPU time / wall time over the same window
  std::uint64_t gpu_ns_total = 0;  // since join
  Nanos heartbeat_age_ns = 0;
};

struct DeviceStatus {
  bool has_holder = false;
  std::uint32_t holder_group = 0;
  Nanos slice_age_ns = 0;
  std::uint64_t handovers = 0;
  std::vector<SlotStatus> slots;  // joined slots, by slot number
};

/// Reads the table without writing to it. Allocates (for the tool, not for the launch path).
DeviceStatus read_status(const DeviceSchedule& table, Nanos now, const Tunables& tunables = {});

}  // namespace xpu::timeslice
