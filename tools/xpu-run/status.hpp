// `xpu-run status`: the node view read from the shared segment. A snapshot copies what the
// segment holds (bounds-checked: it is shared with every process on the node) into plain
// structures; the formatters turn a snapshot into text or JSON, so both are testable on a
// segment image in ordinary memory.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli.hpp"
#include "xpu/coordinator/layout.hpp"
#include "xpu/timeslice/clock.hpp"

namespace xpu::run {

// A process's compute on one device, read from that device's schedule (timeslice::read_status).
struct ComputeView {
  bool joined = false;  // its slot takes part in this device's schedule (in its own group)
  // "holds" (its group holds the device), "waits", "busy", "idle", or "alone" (share mode and no
  // other group on the device: the scheduler measures nothing then). Empty when not joined.
  std::string state;
  // Its part of all GPU time charged on the device over the last 2-4 s, and its GPU time / wall
  // time over the same window, both 0..1. nullopt when not measured: alone in share mode, or
  // nothing at all was charged on the device in the window.
  std::optional<double> delivered_share;
  std::optional<double> gpu_utilization;
  std::uint64_t gpu_ns_total = 0;      // charged since it joined
  std::uint64_t heartbeat_age_ns = 0;  // since its last scheduler tick
};

struct ProcessView {
  std::uint32_t slot = 0;
  std::uint32_t pid = 0;
  std::string comm;
  std::string group;          // "?" when the slot's group index is out of range or free
  std::uint64_t charged = 0;  // bytes charged on the device it is listed under
  // Compute settings as the slot records them: arbitrated = 1 when the process takes part in
  // compute arbitration (any other value reads as "not arbitrated"); compute_percent 0 = no
  // percentage (weight 100); compute_mode is a ComputeMode, priority an xpu::Priority.
  std::uint8_t arbitrated = 0;
  std::uint8_t compute_percent = 0;
  std::uint8_t compute_mode = 0;
  std::uint8_t priority = 0;
  ComputeView compute;  // on the device it is listed under; never joined in NodeView::off_gpu
};

struct GroupView {
  std::string name;
  std::optional<std::uint64_t> quota;  // nullopt: no quota on this device
  std::uint64_t used = 0;              // the sum of its slots' charges on this device
  std::vector<ProcessView> processes;
};

struct DeviceView {
  std::string uuid;
  std::uint64_t physical_bytes = 0;
  std::vector<GroupView> groups;  // groups with a quota, usage or a joined process on this device
  // The compute schedule: the group holding the device (its index; its name when the registry
  // has that group), how long it has held it, and how often the holder changed.
  std::optional<std::uint32_t> holder_index;
  std::optional<std::string> holder_name;
  std::uint64_t slice_age_ns = 0;
  std::uint64_t handovers = 0;
};

struct NodeView {
  std::string segment;  // "/dev/shm/<name>"
  std::vector<DeviceView> devices;
  std::vector<ProcessView> off_gpu;  // live processes not listed under any device
  std::size_t process_count = 0;
  std::size_t group_count = 0;
};

// Reads the segment as it is now; call NodeSegment::reap_dead() first so that dead processes
// are gone. `now` is CLOCK_MONOTONIC (the schedules' clock). Non-const only because
// memquota::Ledger wraps a mutable table; nothing is written.
NodeView snapshot(coordinator::NodeLayout& layout, const std::string& segment_name,
                  timeslice::Nanos now = timeslice::monotonic_now_ns());

std::string format_text(const NodeView& view);
std::string format_json(const NodeView& view);   // one line, one object
std::string json_escape(std::string_view text);  // with the quotes; invalid UTF-8 -> U+FFFD

// The text for a node without a segment (nobody has used xpushim under this name yet).
std::string format_absent(const std::string& segment_name, bool json);

// Runs `xpu-run status`; returns the exit status (0, or 1 if the segment cannot be read). With
// --watch it redraws every interval until SIGINT/SIGTERM (or --watch-count snapshots), then 0.
int run_status(const StatusArgs& args);

}  // namespace xpu::run
