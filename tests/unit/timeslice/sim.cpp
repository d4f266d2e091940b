#include "sim.hpp"

#include <algorithm>
#include <cstring>

namespace xpu::timeslice::sim {

ProcSpec busy_process(std::uint32_t group, std::uint32_t share, Nanos kernel, double jitter,
                      Mode mode, Priority priority) {
  ProcSpec p;
  p.group = group;
  p.share = share;
  p.mode = mode;
  p.priority = priority;
  p.work.kind = WorkKind::kBusy;
  p.work.kernel_ns = kernel;
  p.work.jitter = jitter;
  return p;
}

Simulation::Simulation(const Tunables& tunables, std::uint64_t seed)
    : tunables_(tunables), table_(std::make_unique<DeviceSchedule>()), seed_(seed) {}

bool Simulation::alive(std::uint32_t slot) const {
  return slot < procs_.size() && procs_[slot].alive;
}

int Simulation::add(const ProcSpec& spec) {
  const int idx = static_cast<int>(procs_.size());
  Proc p;
  p.spec = spec;
  const Liveness liveness(
      [](void* ctx, std::uint32_t slot) noexcept {
        return static_cast<const Simulation*>(ctx)->alive(slot);
      },
      this);
  p.arb = std::make_unique<Arbiter>(*table_, static_cast<std::uint32_t>(idx), tunables_, liveness);
  p.rng.seed(seed_ * 1'000'003 + static_cast<std::uint64_t>(idx));
  procs_.push_back(std::move(p));
  push(start_ + spec.join_at, idx, Ev::kJoin);
  if (spec.leave_at != kNever) push(start_ + spec.leave_at, idx, Ev::kLeave);
  return idx;
}

void Simulation::kill_at(int proc, Nanos at) { push(at, proc, Ev::kKill); }
void Simulation::corrupt_at(Nanos at, std::uint64_t seed) { push(at, -1, Ev::kCorrupt, seed); }

void Simulation::set_window(Nanos from, Nanos to) {
  window_from_ = from;
  window_to_ = to;
}

void Simulation::push(Nanos t, int proc, Ev type, std::uint64_t arg) {
  events_.push(Event{t, seq_++, proc, type, arg});
}

void Simulation::schedule_launch(Proc& p, int idx, Nanos t) {
  if (p.launch_scheduled) return;
  p.launch_scheduled = true;
  push(t, idx, Ev::kLaunch, p.gen);
}

void Simulation::run_until(Nanos end) {
  while (!events_.empty() && events_.top().t <= end) {
    const Event e = events_.top();
    events_.pop();
    now_ = std::max(now_, e.t);
    if (gpu_model_ == GpuModel::kTimeSliced) advance_gpu(now_);
    if (e.type == Ev::kCorrupt) {
      std::mt19937_64 rng(e.arg);
      auto* bytes = reinterpret_cast<unsigned char*>(static_cast<void*>(table_.get()));
      for (std::size_t i = 0; i < sizeof(DeviceSchedule); i += 8) {
        const std::uint64_t r = rng();
        std::memcpy(bytes + i, &r, std::min<std::size_t>(8, sizeof(DeviceSchedule) - i));
      }
      continue;
    }
    Proc& p = procs_[static_cast<std::size_t>(e.proc)];
    if (!p.alive) continue;
    const bool stale =
        (e.type == Ev::kLaunch || e.type == Ev::kWatch || e.type == Ev::kRequest) && e.arg != p.gen;
    if (stale) continue;
    switch (e.type) {
      case Ev::kJoin:
        p.arb->join(now_, p.spec.group, p.spec.share, p.spec.mode, p.spec.priority);
        p.joined = true;
        p.joined_at = now_;
        ++p.gen;
        p.launch_scheduled = false;
        p.report_before_retry = false;
        p.unreported.clear();
        p.arrivals.clear();
        p.kernels_left = 0;
        p.sync_pending = false;
        push(now_, e.proc, Ev::kWatch, p.gen);
        if (p.spec.work.kind == WorkKind::kRequests) {
          push(now_ + p.spec.work.period_ns, e.proc, Ev::kRequest, p.gen);
        } else {
          schedule_launch(p, e.proc, now_);
        }
        break;
      case Ev::kLeave:
        p.arb->leave(now_);
        p.joined = false;
        break;
      case Ev::kLaunch:
        p.launch_scheduled = false;
        on_launch(e.proc);
        break;
      case Ev::kWatch:
        on_watch(e.proc);
        break;
      case Ev::kRequest:
        if (!p.joined) break;
        p.arrivals.push_back(now_);
        push(now_ + p.spec.work.period_ns, e.proc, Ev::kRequest, p.gen);
        schedule_launch(p, e.proc, now_);
        break;
      case Ev::kKill:
        p.alive = false;
        p.gpu_queue.clear();  // its context is destroyed with it
        if (running_ == e.proc) running_ = -1;
        break;
      case Ev::kCorrupt:
        break;
    }
  }
  now_ = std::max(now_, end);
  if (gpu_model_ == GpuModel::kTimeSliced) advance_gpu(now_);
}

Nanos Simulation::draw_kernel(Proc& p) {
  const Workload& w = p.spec.work;
  if (w.jitter <= 0.0) return w.kernel_ns;
  std::uniform_real_distribution<double> d(1.0 - w.jitter, 1.0 + w.jitter);
  return std::max<Nanos>(1'000, static_cast<Nanos>(static_cast<double>(w.kernel_ns) * d(p.rng)));
}

Nanos Simulation::next_work(Proc& p) {
  const Workload& w = p.spec.work;
  switch (w.kind) {
    case WorkKind::kIdle:
      return kNever;
    case WorkKind::kBusy:
      return now_;
    case WorkKind::kBursty: {
      const Nanos cycle = w.on_ns + w.off_ns;
      const Nanos phase = (now_ - p.joined_at) % cycle;
      return phase < w.on_ns ? now_ : now_ + (cycle - phase);
    }
    case WorkKind::kRequests:
      if (p.kernels_left > 0) return now_;
      if (p.sync_pending) return now_ + std::max<Nanos>(own_work_left(p, p.gpu_queue.size()), 1);
      if (p.sync_until > now_) return p.sync_until;  // synchronizing on the last request
      if (p.arrivals.empty()) return kNever;         // the next arrival schedules a launch
      p.request_arrival = p.arrivals.front();
      p.arrivals.pop_front();
      p.kernels_left = w.kernels_per_request;
      p.request_started = false;
      return now_;
  }
  return kNever;
}

void Simulation::on_launch(int idx) {
  Proc& p = procs_[static_cast<std::size_t>(idx)];
  if (!p.joined) return;
  if (p.report_before_retry) {
    report(p);
    p.report_before_retry = false;
  }
  while (!p.queued_ends.empty() && p.queued_ends.front() <= now_) p.queued_ends.pop_front();
  const Nanos work_at = next_work(p);
  if (work_at > now_) {
    if (work_at != kNever) schedule_launch(p, idx, work_at);
    return;
  }
  if (p.queued_ends.size() >= p.spec.work.queue_depth) {
    schedule_launch(p, idx, p.queued_ends.front());  // CUDA launch queue full: block
    return;
  }
  if (p.gpu_queue.size() >= p.spec.work.queue_depth) {
    // Time-sliced GPU: the front kernel ends no sooner than its remaining time; look again then.
    schedule_launch(p, idx, now_ + std::max<Nanos>(own_work_left(p, 1), 1));
    return;
  }

  const Decision d = p.arb->before_launch(now_);
  if (!d.go()) {
    ++p.st.waits;
    if (d.reason == WaitReason::kOtherHolder) ++p.st.holder_waits;
    if (d.reason == WaitReason::kDrain) ++p.st.drain_waits;
    p.report_before_retry = d.reason != WaitReason::kOtherHolder;  // as the adapter does
    Nanos retry = d.retry_at_ns;
    if (d.reason == WaitReason::kInflightBound) {
      // The adapter blocks on its oldest tracked launch's event: it wakes as that one completes
      // (time-sliced GPU: no sooner than the front kernel's remaining work; looked at again then).
      if (!p.unreported.empty()) {
        retry = p.unreported.front().first;
      } else if (!p.gpu_queue.empty()) {
        retry = now_ + own_work_left(p, 1);
      }
    }
    schedule_launch(p, idx, std::max(retry, now_ + 1) + p.spec.sleep_overshoot_ns);
    return;
  }

  const Nanos dur = draw_kernel(p);
  if (gpu_model_ == GpuModel::kTimeSliced) {
    submit(p, d, dur);
    schedule_launch(p, idx, now_ + p.spec.work.cpu_per_launch_ns);
    return;
  }
  const Nanos start = std::max(now_, gpu_tail_);
  const Nanos end = start + dur;
  gpu_tail_ = end;
  const Nanos in_window =
      std::max<Nanos>(0, std::min(end, window_to_) - std::max(start, window_from_));
  p.st.gpu_ns += in_window;
  busy_in_window_ += in_window;
  ++p.st.launches;
  if (record_go_) p.st.go_times.push_back(now_);
  p.queued_ends.push_back(end);
  if (d.track) {
    ++p.st.tracked;
    p.arb->on_launch(now_);
    p.unreported.emplace_back(end, dur);
  }
  if (p.spec.work.kind == WorkKind::kRequests) {
    if (!p.request_started) {
      p.request_started = true;
      if (arrived_in_window(p.request_arrival))
        p.st.queue_delay.push_back(start - p.request_arrival);
    }
    if (--p.kernels_left == 0) {
      if (arrived_in_window(p.request_arrival)) p.st.latency.push_back(end - p.request_arrival);
      p.sync_until = end;  // stream synchronize: the next request starts after this one is done
    }
  }
  schedule_launch(p, idx, now_ + p.spec.work.cpu_per_launch_ns);
}

void Simulation::submit(Proc& p, const Decision& d, Nanos dur) {
  ++p.st.launches;
  if (record_go_) p.st.go_times.push_back(now_);
  Kernel k;
  k.submit = now_;
  k.remaining = dur;
  k.tracked = d.track;
  k.from_previous = !p.gpu_queue.empty();
  k.gen = p.gen;
  if (d.track) {
    ++p.st.tracked;
    p.arb->on_launch(now_);
  }
  if (p.spec.work.kind == WorkKind::kRequests) {
    k.request_arrival = p.request_arrival;
    k.first_of_request = !p.request_started;
    p.request_started = true;
    k.last_of_request = --p.kernels_left == 0;
    if (k.last_of_request) p.sync_pending = true;
  }
  p.gpu_queue.push_back(k);
}

int Simulation::next_runnable(int after) const {
  const int n = static_cast<int>(procs_.size());
  for (int i = 1; i <= n; ++i) {
    const int j = ((after < 0 ? -1 : after) + i + n) % n;
    if (!procs_[static_cast<std::size_t>(j)].gpu_queue.empty()) return j;
  }
  return -1;
}

void Simulation::count_in_window(Proc& p, Nanos from, Nanos to) {
  const Nanos in = std::max<Nanos>(0, std::min(to, window_to_) - std::max(from, window_from_));
  p.st.gpu_ns += in;
  busy_in_window_ += in;
}

Nanos Simulation::own_work_left(const Proc& p, std::size_t kernels) const {
  Nanos left = 0;
  for (std::size_t i = 0; i < kernels && i < p.gpu_queue.size(); ++i) {
    left += p.gpu_queue[i].remaining;
  }
  return left;
}

void Simulation::advance_gpu(Nanos to) {
  // Round robin between the processes with queued work, one quantum each; a process whose queue
  // empties gives up the rest of its quantum. Each process's kernels run in its own order.
  while (gpu_now_ < to) {
    if (running_ < 0 || procs_[static_cast<std::size_t>(running_)].gpu_queue.empty() ||
        quantum_left_ <= 0) {
      running_ = next_runnable(running_);
      quantum_left_ = quantum_ns_;
      if (running_ < 0) {
        gpu_now_ = to;  // idle
        return;
      }
    }
    Proc& p = procs_[static_cast<std::size_t>(running_)];
    Kernel& k = p.gpu_queue.front();
    if (!k.started) {
      k.started = true;
      if (k.first_of_request && arrived_in_window(k.request_arrival)) {
        p.st.queue_delay.push_back(gpu_now_ - k.request_arrival);
      }
    }
    const Nanos run = std::min({to - gpu_now_, k.remaining, quantum_left_});
    count_in_window(p, gpu_now_, gpu_now_ + run);
    gpu_now_ += run;
    k.remaining -= run;
    quantum_left_ -= run;
    if (k.remaining > 0) continue;
    // Completed: what the adapter's events measure for it.
    const Nanos measured = gpu_now_ - (k.from_previous ? p.last_end : k.submit);
    p.last_end = gpu_now_;
    if (k.tracked && k.gen == p.gen) p.unreported.emplace_back(gpu_now_, measured);
    if (k.last_of_request) {
      if (arrived_in_window(k.request_arrival))
        p.st.latency.push_back(gpu_now_ - k.request_arrival);
      p.sync_pending = false;
    }
    p.gpu_queue.pop_front();
  }
}

void Simulation::report(Proc& p) {
  std::uint32_t n = 0;
  std::uint64_t gpu = 0;
  while (!p.unreported.empty() && p.unreported.front().first <= now_) {
    gpu += static_cast<std::uint64_t>(p.unreported.front().second);
    p.unreported.pop_front();
    ++n;
  }
  if (n > 0) p.arb->on_complete(now_, n, gpu);
}

void Simulation::on_watch(int idx) {
  Proc& p = procs_[static_cast<std::size_t>(idx)];
  if (!p.joined) return;
  report(p);
  const Nanos next = p.arb->tick(now_);
  push(std::clamp(next, now_ + 50'000, now_ + 100'000'000), idx, Ev::kWatch, p.gen);
}

double Simulation::share(int proc) const {
  return busy_in_window_ == 0
             ? 0.0
             : static_cast<double>(stats(proc).gpu_ns) / static_cast<double>(busy_in_window_);
}

double Simulation::fraction(int proc) const {
  return static_cast<double>(stats(proc).gpu_ns) / static_cast<double>(window_length());
}

double Simulation::gpu_busy_fraction() const {
  return static_cast<double>(busy_in_window_) / static_cast<double>(window_length());
}

}  // namespace xpu::timeslice::sim
