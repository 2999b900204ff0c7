// inject_queue: a mutex-protected FIFO of sched_nodes shared by all workers. It takes spawns and
// wake-ups from threads that are not workers, and the overflow of full run queues. Workers look
// at it every global_queue_interval ticks and whenever their own queue is empty.
#pragma once

#include "intrusive_fifo.hpp"

#include <atomic>
#include <cstddef>
#include <mutex>

namespace corio::detail {

class inject_queue {
 public:
  void push(sched_node* n) {
    std::lock_guard lock(mutex_);
    if (discarding_) return;
    list_.push(n);
    publish_len();
  }

  /// Pushes `count` nodes in one critical section (run-queue overflow).
  void push_batch(sched_node* const* nodes, std::size_t count) {
    std::lock_guard lock(mutex_);
    if (discarding_) return;
    for (std::size_t i = 0; i < count; ++i) list_.push(nodes[i]);
    publish_len();
  }

  sched_node* pop() {
    if (approx_len() == 0) return nullptr;
    std::lock_guard lock(mutex_);
    sched_node* n = list_.pop();
    publish_len();
    return n;
  }

  /// Pops up to `max` nodes into `out` (in order); returns how many.
  std::size_t pop_batch(sched_node** out, std::size_t max) {
    if (approx_len() == 0) return 0;
    std::lock_guard lock(mutex_);
    std::size_t n = 0;
    while (n < max) {
      sched_node* node = list_.pop();
      if (!node) break;
      out[n++] = node;
    }
    publish_len();
    return n;
  }

  /// Seq_cst: a parking worker re-checks this after announcing itself (see idle.hpp).
  std::size_t approx_len() const noexcept { return len_.load(std::memory_order_seq_cst); }

  /// Forgets every node (shutdown).
  void clear() {
    std::lock_guard lock(mutex_);
    list_.clear();
    publish_len();
  }

  /// Shutdown step 6: forgets every node and drops those pushed until accept_again(). Frames are
  /// being destroyed then, and a destructor may wake a waiter (a guard unlocking a mutex): its
  /// node must not be linked behind a node whose frame is already gone.
  void discard() {
    std::lock_guard lock(mutex_);
    list_.clear();
    discarding_ = true;
    publish_len();
  }
  void accept_again() {
    std::lock_guard lock(mutex_);
    discarding_ = false;
  }

 private:
  // Seq_cst store: pairs with the parker's seq_cst re-check (a push is never missed by a worker
  // that announced itself idle before the push's notify looked for parked workers).
  void publish_len() noexcept { len_.store(list_.size(), std::memory_order_seq_cst); }

  std::mutex mutex_;
  node_fifo list_;
  bool discarding_ = false;  // guarded by mutex_
  std::atomic<std::size_t> len_{0};
};

}  // namespace corio::detail
