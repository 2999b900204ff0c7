#include "idle.hpp"

#include "worker.hpp"

#include <algorithm>

namespace corio::detail {

void seq_cst_fence() noexcept {
#if defined(__SANITIZE_THREAD__)
  static std::atomic<int> dummy{0};
  dummy.fetch_add(0, std::memory_order_seq_cst);
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
  static std::atomic<int> dummy{0};
  dummy.fetch_add(0, std::memory_order_seq_cst);
#else
  std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
#else
  std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
}

bool idle_set::try_begin_search() noexcept {
  // Relaxed pre-check: a racy throttle is fine, two extra searchers only cost some CPU.
  std::size_t s = num_searching_.load(std::memory_order_relaxed);
  if (2 * s >= workers_) return false;
  num_searching_.fetch_add(1, std::memory_order_seq_cst);
  return true;
}

bool idle_set::end_search() noexcept {
  return num_searching_.fetch_sub(1, std::memory_order_seq_cst) == 1;
}

bool idle_set::park(worker& w) {
  std::lock_guard lock(mutex_);
  if (stopped_) return false;
  w.park.parked = true;
  w.park.claimed = false;
  w.park.claimed_to_search = false;
  parked_.push_back(&w);
  // seq_cst: the parker's half of the Dekker pattern (P2); its re-check follows.
  num_parked_.fetch_add(1, std::memory_order_seq_cst);
  return true;
}

bool idle_set::unpark(worker& w) {
  std::lock_guard lock(mutex_);
  bool counted = false;
  if (w.park.parked) {
    remove_locked(w);
  } else if (w.park.claimed) {
    counted = w.park.claimed_to_search;
  }
  w.park.parked = false;
  w.park.claimed = false;
  w.park.claimed_to_search = false;
  return counted;
}

worker* idle_set::claim_any() {
  std::lock_guard lock(mutex_);
  if (parked_.empty()) return nullptr;
  worker* w = parked_.back();
  remove_locked(*w);
  w->park.claimed = true;
  w->park.claimed_to_search = true;
  num_searching_.fetch_add(1, std::memory_order_seq_cst);
  return w;
}

bool idle_set::claim(worker& w) {
  std::lock_guard lock(mutex_);
  if (!w.park.parked) return false;
  remove_locked(w);
  w.park.claimed = true;
  return true;
}

std::vector<worker*> idle_set::stop() {
  std::lock_guard lock(mutex_);
  stopped_ = true;
  std::vector<worker*> woken = parked_;
  for (worker* w : woken) {
    remove_locked(*w);
    w->park.claimed = true;
  }
  return woken;
}

void idle_set::reset() {
  std::lock_guard lock(mutex_);
  stopped_ = false;
  parked_.clear();
  num_parked_.store(0, std::memory_order_seq_cst);
  num_searching_.store(0, std::memory_order_seq_cst);
}

void idle_set::remove_locked(worker& w) noexcept {
  auto it = std::find(parked_.begin(), parked_.end(), &w);
  if (it == parked_.end()) return;
  parked_.erase(it);
  w.park.parked = false;
  num_parked_.fetch_sub(1, std::memory_order_seq_cst);
}

}  // namespace corio::detail
