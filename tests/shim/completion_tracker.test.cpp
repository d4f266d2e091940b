// CompletionTracker against a fake driver table: GPU time is the union of the intervals in which
// the process had tracked work on the GPU, measured from events; failures never lose a launch.
#include "compute/completion_tracker.hpp"

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "driver/driver_api.hpp"
#include "xpu_catch.hpp"

namespace {

using xpu::shim::driver_api;
using xpu::shim::DriverApi;
using xpu::shim::compute::Completions;
using xpu::shim::compute::CompletionTracker;

// A device with per-stream queues and a clock the test moves. Events complete when the work
// before them on their stream has finished.
struct FakeGpu {
  std::uint64_t now = 1'000'000;
  std::map<CUstream, std::uint64_t> stream_tail;  // when each stream's queued work ends
  struct Event {
    bool recorded = false;
    std::uint64_t done = 0;
    bool broken = false;  // queries fail (e.g. its context was destroyed)
  };
  std::vector<std::unique_ptr<Event>> events;
  int created = 0, destroyed = 0, records = 0;
  bool capturing = false;

  void launch(CUstream s, std::uint64_t ns) {
    std::uint64_t& tail = stream_tail[s];
    tail = std::max(tail, now) + ns;
  }
  // Another process's work: the GPU is busy until `until`, so our next kernels start after it.
  void busy_until(std::uint64_t until) {
    for (auto& [s, tail] : stream_tail) tail = std::max(tail, until);
  }
};
FakeGpu* gpu = nullptr;
const CUcontext kCtx = reinterpret_cast<CUcontext>(0x1000);

FakeGpu::Event* ev(CUevent e) { return reinterpret_cast<FakeGpu::Event*>(e); }

CUresult CUDAAPI get_current(CUcontext* c) {
  *c = kCtx;
  return CUDA_SUCCESS;
}
CUresult CUDAAPI create(CUevent* e, unsigned int) {
  gpu->events.push_back(std::make_unique<FakeGpu::Event>());
  *e = reinterpret_cast<CUevent>(gpu->events.back().get());
  ++gpu->created;
  return CUDA_SUCCESS;
}
CUresult CUDAAPI destroy(CUevent) {
  ++gpu->destroyed;
  return CUDA_SUCCESS;
}
CUresult CUDAAPI record(CUevent e, CUstream s) {
  if (ev(e)->broken) return CUDA_ERROR_INVALID_HANDLE;
  ev(e)->recorded = true;
  ev(e)->done = std::max(gpu->now, gpu->stream_tail[s]);
  ++gpu->records;
  return CUDA_SUCCESS;
}
CUresult CUDAAPI query(CUevent e) {
  if (ev(e)->broken) return CUDA_ERROR_CONTEXT_IS_DESTROYED;
  return ev(e)->done <= gpu->now ? CUDA_SUCCESS : CUDA_ERROR_NOT_READY;
}
CUresult CUDAAPI elapsed(float* ms, CUevent a, CUevent b) {
  if (ev(a)->broken || ev(b)->broken) return CUDA_ERROR_INVALID_HANDLE;
  *ms = static_cast<float>((static_cast<double>(ev(b)->done) - static_cast<double>(ev(a)->done)) /
                           1e6);
  return CUDA_SUCCESS;
}
CUresult CUDAAPI is_capturing(CUstream, CUstreamCaptureStatus* st) {
  *st = gpu->capturing ? CU_STREAM_CAPTURE_STATUS_ACTIVE : CU_STREAM_CAPTURE_STATUS_NONE;
  return CUDA_SUCCESS;
}
CUresult CUDAAPI exchange_mode(CUstreamCaptureMode*) { return CUDA_SUCCESS; }

struct Fixture {
  FakeGpu g;
  DriverApi saved = driver_api();
  Fixture() {
    gpu = &g;
    DriverApi& d = driver_api();
    d.ctx_get_current = &get_current;
    d.event_create = &create;
    d.event_destroy = &destroy;
    d.event_record = &record;
    d.event_query = &query;
    d.event_elapsed = &elapsed;
    d.stream_is_capturing = &is_capturing;
    d.exchange_capture_mode = &exchange_mode;
    d.events_usable = true;
  }
  ~Fixture() {
    driver_api() = saved;
    gpu = nullptr;
  }
  // One tracked launch, as the gate makes it.
  bool launch(CompletionTracker& t, CUstream s, std::uint64_t ns) {
    if (!t.prepare(s)) return false;
    g.launch(s, ns);
    return t.commit(s, true);
  }
};

const CUstream kA = reinterpret_cast<CUstream>(0x10);
const CUstream kB = reinterpret_cast<CUstream>(0x20);

// Another launch thread (the tracker keeps the launch being prepared per thread), run step by
// step from the test so that its steps interleave with the test thread's as a preempted thread's
// do. Steps run one at a time: the fake GPU needs no lock.
class LaunchThread {
 public:
  LaunchThread() : thread_([this] { loop(); }) {}
  ~LaunchThread() {
    run(nullptr);
    thread_.join();
  }
  LaunchThread(const LaunchThread&) = delete;
  LaunchThread& operator=(const LaunchThread&) = delete;
  // Runs `step` on that thread and returns once it is done; an empty step ends the thread.
  void run(std::function<void()> step) {
    std::unique_lock lock(mu_);
    step_ = std::move(step);
    pending_ = true;
    cv_.notify_all();
    cv_.wait(lock, [this] { return !pending_; });
  }

 private:
  void loop() {
    for (;;) {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return pending_; });
      const bool last = !step_;
      if (step_) step_();
      pending_ = false;
      cv_.notify_all();
      if (last) return;
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::function<void()> step_;
  bool pending_ = false;
  std::thread thread_;
};

}  // namespace

TEST_CASE("back-to-back launches are charged their GPU time, nothing before completion") {
  Fixture f;
  CompletionTracker t;
  REQUIRE(f.launch(t, kA, 1'000'000));
  REQUIRE(f.launch(t, kA, 2'000'000));
  REQUIRE(f.launch(t, kA, 3'000'000));
  CHECK_FALSE(t.poll().any());  // nothing has finished yet
  f.g.now += 3'000'000;         // the first two are done
  Completions c = t.poll();
  CHECK(c.launches == 2);
  CHECK(c.gpu_ns == 3'000'000);
  f.g.now += 10'000'000;
  c = t.poll();
  CHECK(c.launches == 1);
  CHECK(c.gpu_ns == 3'000'000);
}

TEST_CASE("idle time between bursts is not charged") {
  Fixture f;
  CompletionTracker t;
  REQUIRE(f.launch(t, kA, 1'000'000));
  f.g.now += 5'000'000;
  CHECK(t.poll().gpu_ns == 1'000'000);
  f.g.now += 50'000'000;  // idle
  REQUIRE(f.launch(t, kA, 2'000'000));
  f.g.now += 2'000'000;
  CHECK(t.poll().gpu_ns == 2'000'000);
}

TEST_CASE("concurrent streams are charged as the union of their busy intervals") {
  Fixture f;
  CompletionTracker t;
  REQUIRE(f.launch(t, kA, 4'000'000));  // A: [0, 4] ms
  REQUIRE(f.launch(t, kB, 1'000'000));  // B: [0, 1] ms, runs beside A
  REQUIRE(f.launch(t, kB, 1'000'000));  // B: [1, 2] ms
  f.g.now += 10'000'000;
  const Completions c = t.poll();
  CHECK(c.launches == 3);
  CHECK(c.gpu_ns == 4'000'000);  // not 6 ms
}

TEST_CASE(
    "a launch beside another thread's uncommitted launch is not charged the idle time before") {
  // Launch threads on their own streams, as in the threads_streams preload test. One thread has
  // launched but not yet queued its completion record (preempted between the two) when another
  // launches and commits. The second launch used to be chained (the gate's in-flight count
  // already included the first): its record was polled first and charged from our previous
  // slice's last completion, 41 ms here, which were other processes' slices. Nothing of ours is
  // in the ring, so both get pre-events.
  Fixture f;
  CompletionTracker t;
  REQUIRE(f.launch(t, kA, 1'000'000));  // our previous slice
  f.g.now += 2'000'000;
  REQUIRE(t.poll().gpu_ns == 1'000'000);
  f.g.now += 40'000'000;  // other processes' slices
  LaunchThread other;
  bool prepared = false, committed = false;
  other.run([&] {
    prepared = t.prepare(kA);
    f.g.launch(kA, 1'000'000);
  });
  REQUIRE(prepared);
  REQUIRE(f.launch(t, kB, 1'000'000));  // runs beside it
  other.run([&] { committed = t.commit(kA, true); });
  REQUIRE(committed);
  f.g.now += 10'000'000;
  const Completions c = t.poll();
  CHECK(c.launches == 2);
  CHECK(c.gpu_ns == 1'000'000);  // the union: both ran in the same millisecond
}

TEST_CASE("launches of several threads from idle at once are not charged twice") {
  // Two threads start from idle together (a new slice); the one that records its pre-event first
  // launches last, behind the other's kernel. Its interval from its pre-event includes that
  // kernel, which the other launch is charged for already: charge from the later completion.
  Fixture f;
  CompletionTracker t;
  LaunchThread other;
  bool prepared = false, committed = false;
  other.run([&] { prepared = t.prepare(kA); });  // then preempted before its launch
  REQUIRE(prepared);
  f.g.now += 10'000;
  REQUIRE(f.launch(t, kA, 1'000'000));  // from idle as well: [0.01, 1.01] ms
  other.run([&] {
    f.g.launch(kA, 1'000'000);  // queued behind it: [1.01, 2.01] ms
    committed = t.commit(kA, true);
  });
  REQUIRE(committed);
  f.g.now += 10'000'000;
  const Completions c = t.poll();
  CHECK(c.launches == 2);
  CHECK(c.gpu_ns == 2'000'000);  // not 1 + 2.01 ms
}

TEST_CASE("a launch from idle behind another process's work is charged from its own pre-event") {
  // The pre-event completes when our stream reaches it, which is at submission on an idle stream;
  // the exclusive hand-over is what keeps other processes' work out of this interval. Here the
  // device is busy with someone else's work: the charge includes that wait, which is why the
  // scheduler drains the previous holder first.
  Fixture f;
  CompletionTracker t;
  f.g.busy_until(f.g.now + 3'000'000);
  REQUIRE(f.launch(t, kA, 1'000'000));
  f.g.now += 10'000'000;
  CHECK(t.poll().gpu_ns == 1'000'000);
}

TEST_CASE("failed queries count the launch as done, uncharged and stale events are dropped") {
  Fixture f;
  CompletionTracker t;
  REQUIRE(f.launch(t, kA, 1'000'000));
  f.g.events.back()->broken = true;  // its context went away
  f.g.now += 5'000'000;
  const Completions c = t.poll();
  CHECK(c.launches == 1);
  CHECK(c.gpu_ns == 0);
  // The broken event went back to the pool; the next record on it fails and it is destroyed.
  const int destroyed = f.g.destroyed;
  CHECK_FALSE(f.launch(t, kA, 1'000'000));
  CHECK(f.g.destroyed == destroyed + 1);
  // And the one after that works with a fresh event.
  REQUIRE(f.launch(t, kA, 1'000'000));
  f.g.now += 5'000'000;
  CHECK(t.poll().launches == 1);
}

TEST_CASE("a launch the driver refused is not tracked and its events are reused") {
  Fixture f;
  CompletionTracker t;
  REQUIRE(t.prepare(kA));
  CHECK_FALSE(t.commit(kA, false));
  const int created = f.g.created;
  REQUIRE(f.launch(t, kA, 1'000'000));
  CHECK(f.g.created == created);  // pooled, not created again
  CHECK_FALSE(t.poll().any());
}

TEST_CASE("events are created once and reused across many launches") {
  Fixture f;
  CompletionTracker t;
  for (int round = 0; round < 100; ++round) {
    REQUIRE(f.launch(t, kA, 10'000));
    REQUIRE(f.launch(t, kA, 10'000));
    f.g.now += 1'000'000;
    CHECK(t.poll().gpu_ns == 20'000);
  }
  CHECK(f.g.created <= 5);
}

TEST_CASE("without usable event functions nothing is tracked") {
  Fixture f;
  driver_api().events_usable = false;
  CompletionTracker t;
  CHECK_FALSE(t.prepare(kA));
  CHECK_FALSE(t.commit(kA, true));
  CHECK(f.g.records == 0);
}

TEST_CASE("the ring refuses to track beyond its capacity instead of overwriting") {
  Fixture f;
  CompletionTracker t;
  std::size_t tracked = 0;
  for (std::size_t i = 0; i < CompletionTracker::kCapacity + 10; ++i)
    tracked += f.launch(t, kA, 1'000) ? 1 : 0;
  CHECK(tracked == CompletionTracker::kCapacity);
  CHECK(t.full());
  f.g.now += 100'000'000;
  const Completions c = t.poll();
  CHECK(c.launches == CompletionTracker::kCapacity);
  CHECK(c.gpu_ns == CompletionTracker::kCapacity * 1'000);
}
