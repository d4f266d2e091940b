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

namespace xpu::run {

struct ProcessView {
  std::uint32_t slot = 0;
  std::uint32_t pid = 0;
  std::string comm;
  std::string group;          // "?" when the slot's group index is out of range or free
  std::uint64_t charged = 0;  // bytes charged on the device it is listed under
  // Compute settings as the slot records them (written by the compute time-slice issue; zero
  // until then, which reads as "not set").
  std::uint8_t compute_percent = 0;
  std::uint8_t compute_mode = 0;
  std::uint8_t priority = 0;
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
  std::vector<GroupView> groups;  // groups with a quota or usage on this device
};

struct NodeView {
  std::string segment;  // "/dev/shm/<name>"
  std::vector<DeviceView> devices;
  std::vector<ProcessView> off_gpu;  // live processes not listed under any device
  std::size_t process_count = 0;
  std::size_t group_count = 0;
};

// Reads the segment as it is now; call NodeSegment::reap_dead() first so that dead processes
// are gone. Non-const only because memquota::Ledger wraps a mutable table; nothing is written.
NodeView snapshot(coordinator::NodeLayout& layout, const std::string& segment_name);

std::string format_text(const NodeView& view);
std::string format_json(const NodeView& view);   // one line, one object
std::string json_escape(std::string_view text);  // with the quotes; invalid UTF-8 -> U+FFFD

// The text for a node without a segment (nobody has used xpushim under this name yet).
std::string format_absent(const std::string& segment_name, bool json);

// Runs `xpu-run status`; returns the exit status (0, or 1 if the segment cannot be read).
int run_status(const StatusArgs& args);

}  // namespace xpu::run
