// A deterministic discrete-event simulation of processes sharing one GPU, driving the Arbiter API
// exactly as the CUDA adapter does:
//   launch thread: before_launch(); kGo -> submit the kernel (and on_launch() when track is set);
//                  kWait -> sleep until retry_at_ns, first reporting completions for any reason
//                  but kOtherHolder (the adapter polls its events then);
//   watcher:       report completions of tracked launches (on_complete with their exact GPU time),
//                  then tick(), and sleep until the time tick() returned.
// Two GPU models (Simulation::set_gpu):
//   kFifo (default): the GPU runs all submitted kernels one after another in submission order (one
//     FIFO across processes), so every kernel's start and end are known when it is submitted, and
//     the watcher reports each tracked kernel's exact duration.
//   kTimeSliced: what a real GPU does with several processes' contexts. Each process's kernels run
//     in its own order, but while several processes have work queued the GPU round-robins between
//     them in quanta (1 ms). The watcher reports what the CUDA adapter measures from events: the
//     time from this process's previous completion to this one if its previous work was still
//     queued when the launch was submitted, else from the submission (so time spent behind another
//     process's work is charged too). A killed process's queued work is dropped (its context dies).
// A process may have at most queue_depth kernels queued (CUDA's launch queue); further launches
// block until one finishes.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <queue>
#include <random>
#include <vector>

#include "xpu/timeslice/arbiter.hpp"
#include "xpu/timeslice/schedule_table.hpp"
#include "xpu/timeslice/tunables.hpp"

namespace xpu::timeslice::sim {

inline constexpr Nanos kNever = INT64_MAX;

enum class WorkKind { kIdle, kBusy, kBursty, kRequests };

enum class GpuModel { kFifo, kTimeSliced };

struct Workload {
  WorkKind kind = WorkKind::kBusy;
  Nanos kernel_ns = 1'000'000;      // mean GPU time of one launch
  double jitter = 0.0;              // durations uniform in kernel_ns * [1 - jitter, 1 + jitter]
  std::uint32_t queue_depth = 16;   // kernels queued before a launch blocks
  Nanos cpu_per_launch_ns = 5'000;  // CPU time between two launches
  Nanos on_ns = 0;                  // kBursty: has work for on_ns ...
  Nanos off_ns = 0;                 // ... then none for off_ns
  Nanos period_ns = 0;              // kRequests: a request arrives every period_ns ...
  std::uint32_t kernels_per_request = 1;  // ... launches this many kernels, then synchronizes
};

struct ProcSpec {
  std::uint32_t group = 0;
  std::uint32_t share = 100;
  Mode mode = Mode::kShare;
  Priority priority = Priority::kNormal;
  Workload work;
  Nanos sleep_overshoot_ns = 0;  // every wait sleeps this much longer than asked (timer slack)
  Nanos join_at = 0;             // relative to the simulation's start
  Nanos leave_at = kNever;       // relative; kNever: stays
};

struct ProcStats {
  Nanos gpu_ns = 0;                // GPU time of its kernels inside the measuring window
  std::uint64_t launches = 0;      // all launches
  std::uint64_t tracked = 0;       // launches it was asked to track
  std::uint64_t waits = 0;         // before_launch calls that said wait
  std::uint64_t holder_waits = 0;  // ... because another group holds the device
  std::uint64_t drain_waits = 0;   // ... because the previous holder's work still drains
  std::vector<Nanos> latency;      // kRequests arriving in the window: arrival -> last kernel done
  std::vector<Nanos> queue_delay;  // the same requests: arrival -> first kernel starts on the GPU
  std::vector<Nanos> go_times;     // times of launches (only when record_go_times)
};

/// A process that always has work queued: `share` percent in `group`, kernels of `kernel` ns
/// (uniform within +-jitter). The tests' `busy` helpers are this with their own defaults.
ProcSpec busy_process(std::uint32_t group, std::uint32_t share, Nanos kernel, double jitter,
                      Mode mode = Mode::kShare, Priority priority = Priority::kNormal);

class Simulation {
 public:
  explicit Simulation(const Tunables& tunables = {}, std::uint64_t seed = 1);

  /// Adds a process; its slot is its index. Returns the index.
  int add(const ProcSpec& spec);
  /// Extra join / leave of an existing process at absolute times (slot reuse, churn).
  void join_at(int proc, Nanos at) { push(at, proc, Ev::kJoin); }
  void leave_at(int proc, Nanos at) { push(at, proc, Ev::kLeave); }
  /// SIGKILL at absolute time `at`: it stops doing anything at all, and liveness says dead.
  void kill_at(int proc, Nanos at);
  /// Overwrites the whole table with random bytes at absolute time `at`.
  void corrupt_at(Nanos at, std::uint64_t seed);
  /// GPU time is counted inside [from, to) (absolute).
  void set_window(Nanos from, Nanos to);
  void record_go_times(bool on) { record_go_ = on; }
  /// Chooses the GPU model (before the first event runs); quantum_ns is kTimeSliced's time slice.
  void set_gpu(GpuModel model, Nanos quantum_ns = 1'000'000) {
    gpu_model_ = model;
    quantum_ns_ = quantum_ns;
  }
  void run_until(Nanos end);
  /// Runs `warmup` past the start unmeasured, then `length` measured (the usual test shape).
  void run_window(Nanos warmup, Nanos length) {
    set_window(start_ + warmup, start_ + warmup + length);
    run_until(start_ + warmup + length);
  }

  Nanos start() const { return start_; }
  Nanos now() const { return now_; }
  DeviceSchedule& table() { return *table_; }
  Arbiter& arbiter(int proc) { return *procs_[static_cast<std::size_t>(proc)].arb; }
  const ProcStats& stats(int proc) const { return procs_[static_cast<std::size_t>(proc)].st; }
  bool alive(std::uint32_t slot) const;

  /// Part of all GPU time in the window that went to `proc`.
  double share(int proc) const;
  /// GPU time of `proc` / window length.
  double fraction(int proc) const;
  /// Busy GPU time / window length.
  double gpu_busy_fraction() const;
  Nanos window_length() const { return window_to_ - window_from_; }
  // Requests count in latency statistics when they arrive inside the measuring window (the
  // warm-up's requests, while launch costs are still being learned, do not).
  bool arrived_in_window(Nanos arrival) const {
    return arrival >= window_from_ && arrival < window_to_;
  }

 private:
  enum class Ev : std::uint8_t { kJoin, kLeave, kLaunch, kWatch, kRequest, kKill, kCorrupt };
  struct Event {
    Nanos t;
    std::uint64_t seq;
    int proc;
    Ev type;
    std::uint64_t arg;
    bool operator>(const Event& o) const { return t != o.t ? t > o.t : seq > o.seq; }
  };
  // A kernel queued on the time-sliced GPU.
  struct Kernel {
    Nanos submit = 0;
    Nanos remaining = 0;
    bool tracked = false;
    bool from_previous = false;  // the process's previous work was queued at submission
    bool started = false;
    bool first_of_request = false;
    bool last_of_request = false;
    Nanos request_arrival = 0;
    std::uint64_t gen = 0;
  };
  struct Proc {
    ProcSpec spec;
    std::unique_ptr<Arbiter> arb;
    bool alive = true;
    bool joined = false;
    std::uint64_t gen = 0;  // join generation: events of an earlier membership are dropped
    Nanos joined_at = 0;
    bool launch_scheduled = false;
    bool report_before_retry = false;
    std::deque<Nanos> queued_ends;                   // its kernels not finished yet
    std::deque<std::pair<Nanos, Nanos>> unreported;  // tracked (end, duration) not reported
    std::deque<Nanos> arrivals;                      // requests waiting to start
    std::uint32_t kernels_left = 0;
    Nanos request_arrival = 0;
    bool request_started = false;
    Nanos sync_until = 0;
    std::deque<Kernel> gpu_queue;  // kTimeSliced: its kernels not finished, in order
    Nanos last_end = 0;            // kTimeSliced: when its previous kernel finished
    bool sync_pending = false;     // kTimeSliced: the last request's last kernel has not finished
    std::mt19937_64 rng;
    ProcStats st;
  };

  void push(Nanos t, int proc, Ev type, std::uint64_t arg = 0);
  void schedule_launch(Proc& p, int idx, Nanos t);
  void on_launch(int idx);
  void on_watch(int idx);
  void report(Proc& p);
  Nanos next_work(Proc& p);
  Nanos draw_kernel(Proc& p);
  void submit(Proc& p, const Decision& d, Nanos dur);
  void advance_gpu(Nanos to);
  int next_runnable(int after) const;
  void count_in_window(Proc& p, Nanos from, Nanos to);
  Nanos own_work_left(const Proc& p, std::size_t kernels) const;

  Tunables tunables_;
  std::unique_ptr<DeviceSchedule> table_;
  std::vector<Proc> procs_;
  std::priority_queue<Event, std::vector<Event>, std::greater<>> events_;
  std::uint64_t seq_ = 0;
  Nanos start_ = 1'000'000'000;
  Nanos now_ = start_;
  Nanos gpu_tail_ = 0;
  Nanos window_from_ = 0;
  Nanos window_to_ = kNever;
  Nanos busy_in_window_ = 0;
  bool record_go_ = false;
  GpuModel gpu_model_ = GpuModel::kFifo;
  Nanos quantum_ns_ = 1'000'000;
  Nanos gpu_now_ = 0;  // kTimeSliced: the GPU has been simulated up to here
  int running_ = -1;   // kTimeSliced: the process in its quantum, -1 = none
  Nanos quantum_left_ = 0;
  std::uint64_t seed_;
};

}  // namespace xpu::timeslice::sim
