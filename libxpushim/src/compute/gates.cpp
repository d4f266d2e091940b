#include "compute/gates.hpp"

#include <algorithm>
#include <exception>
#include <thread>

#include "driver/driver_api.hpp"
#include "xpu/common/log.hpp"
#include "xpu/coordinator/segment.hpp"
#include "xpu/timeslice/clock.hpp"

namespace xpu::shim::compute {
namespace {

bool slot_alive(void* segment, std::uint32_t slot) noexcept {
  try {
    return static_cast<coordinator::NodeSegment*>(segment)->slot_alive(slot);
  } catch (...) {
    return true;  // unknown: never reclaim on a guess
  }
}

}  // namespace

Gates::Gates(coordinator::NodeSegment& segment, std::uint32_t slot, const JoinSpec& spec) noexcept
    : segment_(segment), slot_(slot), spec_(spec) {}

void Gates::add_device(int ordinal, std::uint32_t device) noexcept {
  if (ordinal < 0 || ordinal >= static_cast<int>(kMaxDevices)) return;
  by_ordinal_[static_cast<std::size_t>(ordinal)] = std::make_unique<DeviceGate>(
      segment_.schedule(device), slot_, spec_, timeslice::Liveness(&slot_alive, &segment_));
  ordinals_ = std::max(ordinals_, ordinal + 1);
}

DeviceGate* Gates::current() noexcept {
  DeviceGate* gate = nullptr;
  if (ordinals_ == 1) {
    gate = by_ordinal_[0].get();  // one visible device: no need to ask the driver which
  } else {
    CUdevice dev = 0;
    if (driver_api().ctx_get_device(&dev) != CUDA_SUCCESS || dev < 0 || dev >= ordinals_)
      return nullptr;
    gate = by_ordinal_[static_cast<std::size_t>(dev)].get();
  }
  if (gate != nullptr && !watcher_started_.load(std::memory_order_acquire)) [[unlikely]]
    start_watcher();
  return gate;
}

void Gates::start_watcher() noexcept {
  if (watcher_started_.exchange(true, std::memory_order_acq_rel)) return;
  try {
    std::thread([this] { watch(); }).detach();
  } catch (const std::exception& e) {
    // Without a watcher, tracked launches are never reported: give up arbitration rather than
    // stall (fail open on our own fault), and say so.
    log(LogLevel::error,
        "cannot start the compute watcher thread ({}); compute shares are NOT "
        "enforced",
        e.what());
    leave_all();
  }
}

void Gates::watch() noexcept {
  // Its only driver calls are the tracker's polls, which run in RELAXED capture mode themselves.
  const FineTimerSlack fine;  // our own thread: for its whole life
  for (;;) {
    const timeslice::Nanos now = timeslice::monotonic_now_ns();
    timeslice::Nanos next = now + 50'000'000;
    servicing_.store(true, std::memory_order_seq_cst);
    if (!stopping_.load(std::memory_order_seq_cst)) {
      for (int i = 0; i < ordinals_; ++i) {
        if (DeviceGate* g = by_ordinal_[static_cast<std::size_t>(i)].get(); g != nullptr)
          next = std::min(next, g->service(now));
      }
    }
    servicing_.store(false, std::memory_order_seq_cst);
    sleep_until(next);
  }
}

void Gates::stop() noexcept {
  stopping_.store(true, std::memory_order_seq_cst);
  // Wait (bounded) for a service pass in progress: it ends within one event poll.
  const timeslice::Nanos deadline = timeslice::monotonic_now_ns() + 100'000'000;
  while (servicing_.load(std::memory_order_seq_cst) && timeslice::monotonic_now_ns() < deadline)
    sleep_until(timeslice::monotonic_now_ns() + 100'000);
  leave_all();
}

void Gates::leave_all() noexcept {
  for (auto& g : by_ordinal_)
    if (g) g->leave();
}

}  // namespace xpu::shim::compute
