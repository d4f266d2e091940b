// The shim's process-wide state: settings, the node segment, this process's slot and account,
// and the CUDA ordinal -> node device map. Created on the first hooked CUDA call, never
// destroyed (hooks can run during exit, after static destructors).
//
// Modes:
//   unset          nothing happened yet (or a forked child that has not used CUDA)
//   inert          no quota or compute setting: every call passes straight through
//   enforcing      quotas and/or compute arbitration apply
//   misconfigured  a setting is invalid or cannot be enforced: CUDA initialisation fails with
//                  the message already printed. Never "unlimited".
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "compute/gates.hpp"
#include "cuda_api.hpp"
#include "xpu/common/settings.hpp"
#include "xpu/coordinator/segment.hpp"
#include "xpu/memquota/process_account.hpp"

namespace xpu::shim {

enum class Mode : std::uint8_t { unset, inert, enforcing, misconfigured };

class Runtime {
 public:
  static Runtime& get() noexcept;

  // Initialises on first use (calling the real cuInit(0) if the application has not).
  Mode ensure_initialised() noexcept;
  Mode mode() const noexcept { return mode_.load(std::memory_order_acquire); }
  // The error every CUDA entry point reports while misconfigured.
  static constexpr CUresult kConfigError = CUDA_ERROR_INVALID_VALUE;

  memquota::ProcessAccount* account() noexcept { return account_.load(std::memory_order_acquire); }
  // Compute gates; nullptr unless this process takes part in compute arbitration.
  compute::Gates* compute() noexcept { return compute_.load(std::memory_order_acquire); }

  // Node device index of the calling thread's current context, or of a CUDA ordinal.
  std::optional<std::uint32_t> current_device(int* ordinal_out = nullptr) noexcept;
  std::optional<std::uint32_t> device_of_ordinal(int ordinal) const noexcept;
  std::optional<std::uint32_t> device_of_uuid(const Uuid& uuid) const noexcept;
  std::optional<int> ordinal_of_device(std::uint32_t device) const noexcept;

  // Admission with the slow path: on a refusal, reclaim what the driver and dead processes no
  // longer hold (reap dead slots, re-read pool reservations) and try once more.
  template <class Reserve>
  bool admit(Reserve&& reserve) {
    if (reserve() == memquota::Admission::admitted) return true;
    reclaim(/*force=*/true);
    return reserve() == memquota::Admission::admitted;
  }
  // Reaps dead processes and refreshes pool charges; rate-limited unless forced.
  void reclaim(bool force) noexcept;

  // Context footprints, keyed by CUDA ordinal (primary) or context handle.
  std::uint64_t measure_context_footprint(int ordinal, std::uint32_t device,
                                          std::optional<std::uint64_t> nvml_used_before) noexcept;
  std::optional<std::uint64_t> nvml_device_used(int ordinal) noexcept;
  std::mutex& context_mutex() { return context_mu_; }
  std::array<std::uint64_t, kMaxDevices>& primary_footprints() { return primary_footprint_; }
  std::unordered_map<CUcontext, std::pair<std::uint32_t, std::uint64_t>>& context_footprints() {
    return context_footprint_;
  }

  const Settings& settings() const { return settings_; }

 private:
  Runtime() = default;
  Mode initialise() noexcept;
  Mode initialise_locked();
  void start_compute(std::uint32_t slot);
  Mode fail(const std::string& message) noexcept;
  static void after_fork_in_child() noexcept;

  std::mutex init_mu_;
  std::atomic<Mode> mode_{Mode::unset};
  Settings settings_;
  std::unique_ptr<coordinator::NodeSegment> segment_;
  std::atomic<memquota::ProcessAccount*> account_{nullptr};
  std::atomic<compute::Gates*> compute_{nullptr};
  std::array<std::int32_t, kMaxDevices> ordinal_to_device_{};  // -1 = not registered
  std::array<Uuid, kMaxDevices> ordinal_uuid_{};
  int device_count_ = 0;
  std::atomic<std::int64_t> last_reclaim_ns_{0};

  std::mutex context_mu_;
  std::array<std::uint64_t, kMaxDevices> primary_footprint_{};  // by ordinal
  std::unordered_map<CUcontext, std::pair<std::uint32_t, std::uint64_t>> context_footprint_;
};

}  // namespace xpu::shim
