// idle_set: which workers are parked or searching, and the wake-up policy.
//
// Protocol (after tokio's idle.rs; the numbered steps are referenced in worker.cpp):
//
//  P1 A worker that runs out of local work may become a *searcher* (it steals from peers and the
//     global queue) if fewer than half the workers already search; this throttles stealing storms.
//  P2 A worker that finds nothing *parks*: under the mutex it adds itself to `parked_` and bumps
//     `num_parked_` (seq_cst), stops being a searcher, then re-checks every place work can appear
//     for it (stop flag, inbox, global queue, peers' run queues) before it sleeps in its ring.
//  P3 A producer that made stealable work available issues a seq_cst fence and then reads
//     `num_searching_` and `num_parked_`. If nobody searches and somebody is parked, it claims one
//     parked worker under the mutex (removing it, counting it as a searcher) and sends it a
//     wake-up through its ring (IORING_OP_MSG_RING, or its eventfd from non-worker threads).
//  P4 Work for one particular worker (a pinned task) goes to that worker's inbox; the producer
//     then claims that worker under the mutex if it is parked and wakes it.
//
// No lost wake-up: in P2/P3 both sides write their own variable and then read the other's, with
// seq_cst on both (the Dekker pattern): either the producer sees the parked worker and wakes it,
// or the parker's re-check sees the work. P4 is ordered by the mutex: the inbox push happens
// before the producer's critical section, and the parker re-checks after its own. A wake-up is
// a message in the target's ring, not a flag, so it cannot be missed between the re-check and the
// wait: the wait returns at once if the message already arrived.
//
// A woken worker may find its wake-up redundant (it woke for its own I/O first); the message then
// arrives later as a spurious wake-up, which costs one loop iteration.
#pragma once

#include <atomic>
#include <cstddef>
#include <mutex>
#include <vector>

namespace corio::detail {

class worker;

class idle_set {
 public:
  explicit idle_set(std::size_t workers) : workers_(workers) { parked_.reserve(workers); }

  std::size_t num_searching() const noexcept {
    return num_searching_.load(std::memory_order_seq_cst);
  }
  std::size_t num_parked() const noexcept { return num_parked_.load(std::memory_order_seq_cst); }

  /// P1: returns true if the caller may start searching (and counts it).
  bool try_begin_search() noexcept;
  /// The caller stops searching; returns true if it was the last searcher.
  bool end_search() noexcept;

  /// P2, first half: registers `w` as parked. Returns false (and does nothing) once stop() ran.
  bool park(worker& w);
  /// After the wait (or a positive re-check): `w` is running again. Returns true if a producer
  /// claimed `w` as a searcher meanwhile (the caller is then counted as searching).
  bool unpark(worker& w);

  /// P3: claims a parked worker to search; nullptr if none is parked.
  worker* claim_any();
  /// P4: claims `w` if it is parked.
  bool claim(worker& w);

  /// Session end: refuses further parking and returns every parked worker (to be woken).
  std::vector<worker*> stop();
  /// Session start.
  void reset();

 private:
  void remove_locked(worker& w) noexcept;

  std::size_t workers_;
  std::mutex mutex_;
  std::vector<worker*> parked_;  // guarded by mutex_
  bool stopped_ = false;         // guarded by mutex_
  std::atomic<std::size_t> num_searching_{0};
  std::atomic<std::size_t> num_parked_{0};
};

/// A sequentially consistent fence for the Dekker pattern above. Under ThreadSanitizer (which does
/// not model fences, and which GCC warns about) it is a seq_cst read-modify-write instead.
void seq_cst_fence() noexcept;

}  // namespace corio::detail
