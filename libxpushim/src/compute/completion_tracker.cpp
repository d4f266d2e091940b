#include "compute/completion_tracker.hpp"

#include <algorithm>
#include <cmath>

#include "driver/driver_api.hpp"

namespace xpu::shim::compute {

thread_local CompletionTracker::Record CompletionTracker::pending_{};

namespace {

// cuEventElapsedTime's float milliseconds (about 0.5 us resolution), rounded to ns.
std::uint64_t to_ns(float ms) noexcept {
  return static_cast<std::uint64_t>(std::llround(static_cast<double>(ms) * 1e6));
}

}  // namespace

CUevent CompletionTracker::take_event(CUcontext ctx) noexcept {
  auto it = std::find_if(pools_.begin(), pools_.end(), [&](const Pool& p) { return p.ctx == ctx; });
  if (it == pools_.end()) {
    pools_.push_back(Pool{ctx, {}});
    it = pools_.end() - 1;
  }
  if (!it->free.empty()) {
    CUevent e = it->free.back();
    it->free.pop_back();
    return e;
  }
  CUevent e = nullptr;
  if (driver_api().event_create(&e, CU_EVENT_DEFAULT) != CUDA_SUCCESS) return nullptr;
  return e;
}

void CompletionTracker::give_back(const Record& r) noexcept {
  for (Pool& p : pools_) {
    if (p.ctx != r.ctx) continue;
    if (r.pre != nullptr) p.free.push_back(r.pre);
    if (r.post != nullptr) p.free.push_back(r.post);
    return;
  }
}

bool CompletionTracker::prepare(CUstream stream) noexcept {
  DriverApi& d = driver_api();
  pending_ = Record{};
  if (!d.events_usable) return false;
  CUcontext ctx = nullptr;
  if (d.ctx_get_current(&ctx) != CUDA_SUCCESS || ctx == nullptr) return false;
  std::lock_guard lock(mu_);
  if (size_ == kCapacity) return false;
  pending_.ctx = ctx;
  pending_.post = take_event(ctx);
  if (pending_.post == nullptr) return false;
  // Nothing queued that will be polled ahead of this launch: measure it from its own pre-event.
  if (size_ == 0) {
    pending_.pre = take_event(ctx);
    if (pending_.pre != nullptr && d.event_record(pending_.pre, stream) != CUDA_SUCCESS) {
      d.event_destroy(pending_.pre);  // possibly stale (its context was destroyed): drop it
      pending_.pre = nullptr;
    }
  }
  return true;
}

bool CompletionTracker::commit(CUstream stream, bool launched) noexcept {
  Record r = pending_;
  pending_ = Record{};
  if (r.post == nullptr) return false;
  const bool recorded = launched && driver_api().event_record(r.post, stream) == CUDA_SUCCESS;
  if (launched && !recorded) {
    driver_api().event_destroy(r.post);  // possibly stale (its context was destroyed): drop it
    r.post = nullptr;
  }
  std::lock_guard lock(mu_);
  if (!recorded || size_ == kCapacity) {
    give_back(r);
    return false;
  }
  ring_[(head_ + size_) % kCapacity] = r;
  ++size_;
  return true;
}

bool CompletionTracker::full() const noexcept {
  std::lock_guard lock(mu_);
  return size_ == kCapacity;
}

std::uint64_t CompletionTracker::measure(const Record& r, bool* newest) noexcept {
  // Signed distance from the latest completion seen so far: it both charges a chained launch and
  // tells whether this completion is the newest (a launch on another stream may finish first).
  *newest = true;
  float since_last_ms = 0.0F;
  const bool have_last =
      last_done_ != nullptr && last_done_ctx_ == r.ctx &&
      driver_api().event_elapsed(&since_last_ms, last_done_, r.post) == CUDA_SUCCESS;
  if (have_last) *newest = since_last_ms >= 0.0F;
  if (r.pre != nullptr) {
    float ms = 0.0F;
    if (driver_api().event_elapsed(&ms, r.pre, r.post) == CUDA_SUCCESS) {
      // From the later of the two: what ran between the pre-event and the latest completion
      // (launches of other threads queued ahead of this one) was charged to those already.
      if (have_last) ms = std::min(ms, since_last_ms);
      return ms > 0.0F ? to_ns(ms) : 0;
    }
  }
  if (have_last && since_last_ms > 0.0F) return to_ns(since_last_ms);
  return 0;
}

bool CompletionTracker::wait_oldest() noexcept {
  CUevent oldest = nullptr;
  {
    std::lock_guard lock(mu_);
    if (size_ > 0) oldest = ring_[head_].post;
  }
  if (oldest == nullptr) return false;
  // Without the lock, so the watcher keeps going. Should the record complete and its event be
  // reused meanwhile, this waits for that newer work instead: later, never wrong.
  RelaxedCaptureScope relaxed;
  return driver_api().event_synchronize(oldest) == CUDA_SUCCESS;
}

Completions CompletionTracker::poll() noexcept {
  Completions out;
  DriverApi& d = driver_api();
  RelaxedCaptureScope relaxed;
  std::lock_guard lock(mu_);
  while (size_ > 0) {
    Record& r = ring_[head_];
    const CUresult q = d.event_query(r.post);
    if (q == CUDA_ERROR_NOT_READY) break;
    ++out.launches;
    if (q == CUDA_SUCCESS) {
      bool newest = true;
      out.gpu_ns += measure(r, &newest);
      if (newest) {
        // r.post becomes the reference for the next chained launch; the old one goes back.
        if (last_done_ != nullptr) give_back(Record{last_done_ctx_, nullptr, last_done_});
        last_done_ = r.post;
        last_done_ctx_ = r.ctx;
        r.post = nullptr;
      }
    }
    // A failed query (context destroyed, device error): the launch counts as done, uncharged.
    give_back(r);
    r = Record{};
    head_ = (head_ + 1) % kCapacity;
    --size_;
  }
  return out;
}

}  // namespace xpu::shim::compute
