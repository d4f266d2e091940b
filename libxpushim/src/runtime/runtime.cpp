#include "runtime/runtime.hpp"

#include <pthread.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cstring>

#include "driver/driver_api.hpp"
#include "hook_table.hpp"
#include "xpu/common/log.hpp"
#include "xpu/common/units.hpp"
#include "xpu/timeslice/clock.hpp"

namespace xpu::shim {
namespace {

// The settings' priority (high first) as the scheduler's (numeric order = precedence).
timeslice::Priority to_timeslice(Priority p) {
  switch (p) {
    case Priority::high:
      return timeslice::Priority::kHigh;
    case Priority::low:
      return timeslice::Priority::kLow;
    case Priority::normal:
      break;
  }
  return timeslice::Priority::kNormal;
}

constexpr std::int64_t kReclaimIntervalNs = 100'000'000;  // memory queries reap at most 10x/s

}  // namespace

Runtime& Runtime::get() noexcept {
  // Leaked on purpose: hooks may run after static destructors during exit.
  static Runtime* instance = new Runtime();
  return *instance;
}

Mode Runtime::ensure_initialised() noexcept {
  const Mode m = mode();
  if (m != Mode::unset) [[likely]]
    return m;
  return initialise();
}

Mode Runtime::fail(const std::string& message) noexcept {
  log(LogLevel::error, "{}", message);
  log(LogLevel::error,
      "CUDA initialisation is refused so that no process runs without the "
      "limits it was given; fix the setting and restart");
  mode_.store(Mode::misconfigured, std::memory_order_release);
  return Mode::misconfigured;
}

Mode Runtime::initialise() noexcept {
  std::lock_guard lock(init_mu_);
  if (mode() != Mode::unset) return mode();
  try {
    return initialise_locked();
  } catch (const std::exception& e) {
    // An internal fault (not a configuration problem): fail open, say so once.
    log(LogLevel::error, "internal fault while initialising ({}); quotas are NOT enforced",
        e.what());
    mode_.store(Mode::inert, std::memory_order_release);
    return Mode::inert;
  }
}

Mode Runtime::initialise_locked() {
  auto loaded = load_settings(process_environment());
  if (!loaded) return fail(loaded.error().message);
  settings_ = std::move(loaded.value());
  set_log_level(settings_.log_level);
  for (const std::string& line : describe(settings_)) log(LogLevel::info, "{}", line);

  static std::once_flag atfork_once;
  std::call_once(atfork_once, [] { ::pthread_atfork(nullptr, nullptr, &after_fork_in_child); });

  if (settings_.mem_limit.empty() && !settings_.arbitrated()) {
    log(LogLevel::info, "no quota or compute limit set: passing every call through");
    mode_.store(Mode::inert, std::memory_order_release);
    return Mode::inert;
  }
  if (!load_driver_api()) return fail("cannot load the CUDA driver's entry points (libcuda.so.1)");
  // Idempotent; the application may have reached us before calling cuInit itself.
  const auto real_init = real<CudaHook::cuInit, PFN_cuInit_v2000>();
  if (real_init == nullptr || real_init(0) != CUDA_SUCCESS) {
    // Nothing to enforce on a machine whose driver does not start; the application will see
    // the driver's own error from its own cuInit.
    mode_.store(Mode::unset, std::memory_order_release);
    return Mode::unset;
  }

  auto segment = coordinator::NodeSegment::open(settings_.node_segment);
  if (!segment) return fail(segment.error().message);
  segment_ = std::move(segment.value());
  const auto me = coordinator::ProcessIdentity::current();
  const std::string group = settings_.group.empty()
                                ? fmt::format("pid-{}-{}", me.pid, me.start_time_ticks)
                                : settings_.group;
  const coordinator::SlotCompute slot_compute{
      settings_.arbitrated(), static_cast<std::uint8_t>(settings_.compute.value_or(0)),
      static_cast<std::uint8_t>(settings_.compute_mode),
      static_cast<std::uint8_t>(settings_.priority)};
  auto slot = segment_->claim_slot(group, me, slot_compute);
  if (!slot) return fail(slot.error().message);

  DriverApi& d = driver_api();
  int count = 0;
  if (d.device_get_count(&count) != CUDA_SUCCESS) count = 0;
  device_count_ = std::min<int>(count, static_cast<int>(kMaxDevices));
  ordinal_to_device_.fill(-1);
  const auto total_mem = real<CudaHook::cuDeviceTotalMem_v2, PFN_cuDeviceTotalMem_v3020>();
  for (int ordinal = 0; ordinal < device_count_; ++ordinal) {
    CUdevice dev = 0;
    CUuuid raw{};
    std::size_t bytes = 0;
    if (d.device_get(&dev, ordinal) != CUDA_SUCCESS ||
        d.device_get_uuid(&raw, dev) != CUDA_SUCCESS || total_mem == nullptr ||
        total_mem(&bytes, dev) != CUDA_SUCCESS)
      return fail(fmt::format("cannot identify CUDA device {}", ordinal));
    Uuid uuid;
    std::memcpy(uuid.bytes.data(), raw.bytes, 16);
    auto index = segment_->device_index(uuid, bytes);
    if (!index) return fail(index.error().message);
    auto quota = resolve_quota(settings_, ordinal, uuid, bytes);
    if (!quota) return fail(quota.error().message);
    if (auto s = segment_->set_group_quota(index.value(), quota.value()); !s)
      return fail(s.error().message);
    ordinal_to_device_[static_cast<std::size_t>(ordinal)] =
        static_cast<std::int32_t>(index.value());
    ordinal_uuid_[static_cast<std::size_t>(ordinal)] = uuid;
    log(LogLevel::info, "device {} ({}, {}): quota {}", ordinal, to_string(uuid),
        format_bytes(bytes), quota.value() ? format_bytes(*quota.value()) : std::string("none"));
  }
  for (const auto& [key, q] : settings_.mem_limit.devices) {
    if (!key.uuid && key.ordinal >= device_count_)
      log(LogLevel::warn, "{} names device {} but this process sees {} device(s)",
          settings_.mem_limit_source, key.ordinal, device_count_);
  }
  account_.store(
      new memquota::ProcessAccount(segment_->layout().ledger, slot.value(), segment_->own_group()),
      std::memory_order_release);
  if (settings_.arbitrated()) start_compute(slot.value());
  log(LogLevel::info, "group '{}', slot {}, node segment /dev/shm/{}", group, slot.value(),
      settings_.node_segment);
  mode_.store(Mode::enforcing, std::memory_order_release);
  return Mode::enforcing;
}

void Runtime::start_compute(std::uint32_t slot) {
  compute::JoinSpec spec;
  spec.group = segment_->own_group();
  spec.share_percent = settings_.compute.value_or(100);
  spec.mode =
      settings_.compute_mode == ComputeMode::cap ? timeslice::Mode::kCap : timeslice::Mode::kShare;
  spec.priority = to_timeslice(settings_.priority);
  // Validated when the settings were parsed; a failure here would be a bug, not a bad setting.
  if (const std::string why = timeslice::apply_overrides(spec.tunables, settings_.sched_tunables);
      !why.empty())
    log(LogLevel::error, "XPU_SCHED_TUNABLES: {}; using the defaults", why);
  auto* gates = new compute::Gates(*segment_, slot, spec);
  for (int ordinal = 0; ordinal < device_count_; ++ordinal)
    if (const auto device = device_of_ordinal(ordinal)) gates->add_device(ordinal, *device);
  compute_.store(gates, std::memory_order_release);
  // A normal exit hands the device on at once instead of when our leases run out.
  static std::once_flag atexit_once;
  std::call_once(atexit_once, [] {
    std::atexit([] {
      if (compute::Gates* g = get().compute()) g->stop();
    });
  });
  log(LogLevel::info, "compute: {} (weight {}), priority {}, on {} device(s)",
      settings_.compute
          ? fmt::format("{}% {}", *settings_.compute, to_string(settings_.compute_mode))
          : std::string("no percentage"),
      spec.share_percent, to_string(settings_.priority), device_count_);
}

void Runtime::after_fork_in_child() noexcept {
  // CUDA cannot be used across fork; the child starts over if it initialises CUDA itself. The
  // parent's slot, lock and account are not the child's: drop them without touching them.
  Runtime& rt = get();
  if (rt.segment_) {
    rt.segment_->abandon_after_fork();
    (void)rt.segment_.release();  // leaked: the mapping stays valid and harmless
  }
  rt.account_.store(nullptr);  // leaked for the same reason
  rt.compute_.store(nullptr);  // its watcher thread does not exist in the child
  rt.mode_.store(Mode::unset);
  new (&rt.init_mu_) std::mutex();  // a parent thread may have held it at fork time
}

std::optional<std::uint32_t> Runtime::device_of_ordinal(int ordinal) const noexcept {
  if (ordinal < 0 || ordinal >= device_count_) return std::nullopt;
  const std::int32_t d = ordinal_to_device_[static_cast<std::size_t>(ordinal)];
  if (d < 0) return std::nullopt;
  return static_cast<std::uint32_t>(d);
}

std::optional<std::uint32_t> Runtime::device_of_uuid(const Uuid& uuid) const noexcept {
  for (int i = 0; i < device_count_; ++i)
    if (ordinal_uuid_[static_cast<std::size_t>(i)] == uuid) return device_of_ordinal(i);
  return std::nullopt;
}

std::optional<int> Runtime::ordinal_of_device(std::uint32_t device) const noexcept {
  for (int i = 0; i < device_count_; ++i)
    if (ordinal_to_device_[static_cast<std::size_t>(i)] == static_cast<std::int32_t>(device))
      return i;
  return std::nullopt;
}

std::optional<std::uint32_t> Runtime::current_device(int* ordinal_out) noexcept {
  CUdevice dev = 0;
  if (driver_api().ctx_get_device == nullptr || driver_api().ctx_get_device(&dev) != CUDA_SUCCESS)
    return std::nullopt;
  if (ordinal_out != nullptr) *ordinal_out = dev;
  return device_of_ordinal(dev);
}

void Runtime::reclaim(bool force) noexcept {
  memquota::ProcessAccount* acct = account();
  if (acct == nullptr || !segment_) return;
  const std::int64_t now = timeslice::monotonic_now_ns();
  std::int64_t last = last_reclaim_ns_.load(std::memory_order_relaxed);
  if (!force && now - last < kReclaimIntervalNs) return;
  if (!last_reclaim_ns_.compare_exchange_strong(last, now) && !force) return;
  segment_->reap_dead();
  DriverApi& d = driver_api();
  if (d.mem_pool_get_attribute == nullptr) return;
  RelaxedCaptureScope relaxed;
  acct->for_each_pool([&](std::uint64_t pool, std::uint32_t) {
    cuuint64_t reserved = 0;
    if (d.mem_pool_get_attribute(reinterpret_cast<CUmemoryPool>(pool),
                                 CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &reserved) == CUDA_SUCCESS)
      acct->pool_settle(pool, reserved);
  });
}

std::optional<std::uint64_t> Runtime::nvml_device_used(int ordinal) noexcept {
  if (ordinal < 0 || ordinal >= device_count_ || !load_nvml_api()) return std::nullopt;
  DriverApi& d = driver_api();
  nvmlDevice_t dev = nullptr;
  const std::string uuid = to_string(ordinal_uuid_[static_cast<std::size_t>(ordinal)]);
  if (d.nvml_device_by_uuid(uuid.c_str(), &dev) != NVML_SUCCESS) return std::nullopt;
  const auto mem_info = real<NvmlHook::nvmlDeviceGetMemoryInfo, xpu_nvmlDeviceGetMemoryInfo_t>();
  nvmlMemory_t mem{};
  if (mem_info == nullptr || mem_info(dev, &mem) != NVML_SUCCESS) return std::nullopt;
  return mem.used;
}

std::uint64_t Runtime::measure_context_footprint(int ordinal, std::uint32_t device,
                                                 std::optional<std::uint64_t> before) noexcept {
  // Preferred: NVML's per-process usage for our pid, minus what we already charged on the
  // device. In another PID namespace our pid is not in NVML's list; then the device-wide growth
  // across the context's creation is the estimate.
  memquota::ProcessAccount* acct = account();
  if (acct != nullptr && load_nvml_api()) {
    DriverApi& d = driver_api();
    nvmlDevice_t dev = nullptr;
    const std::string uuid = to_string(ordinal_uuid_[static_cast<std::size_t>(ordinal)]);
    if (d.nvml_device_by_uuid(uuid.c_str(), &dev) == NVML_SUCCESS) {
      nvmlProcessInfo_t infos[256];
      unsigned int n = 256;
      if (d.nvml_running_processes(dev, &n, infos) == NVML_SUCCESS) {
        for (unsigned int i = 0; i < n && i < 256; ++i) {
          if (infos[i].pid == static_cast<unsigned int>(::getpid())) {
            const std::uint64_t mine = acct->own_usage(device);
            return infos[i].usedGpuMemory > mine ? infos[i].usedGpuMemory - mine : 0;
          }
        }
      }
    }
  }
  if (before) {
    if (auto after = nvml_device_used(ordinal); after && *after > *before) return *after - *before;
  }
  static std::atomic<bool> once{false};
  log_once(once, LogLevel::warn,
           "cannot measure the CUDA context's own memory (NVML unavailable); it is not counted "
           "toward the quota");
  return 0;
}

}  // namespace xpu::shim
