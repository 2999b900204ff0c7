// The waiting machinery shared by channels, sync primitives and select: a spin lock per primitive,
// intrusive wait lists, and the protocol that decides, exactly once, how a waiter ends.
#pragma once

#include <corio/detail/sched_node.hpp>
#include <corio/detail/wait_point.hpp>

#include <atomic>
#include <coroutine>
#include <cstdint>

namespace corio::detail {

/// An identity of the calling thread: its thread pointer, never 0. Read with a volatile asm so
/// that a compiler cannot reuse one read across a coroutine's suspension (it may resume on
/// another thread).
inline std::uintptr_t this_thread_tag() noexcept {
#if defined(__x86_64__)
  std::uintptr_t t;
  asm volatile("mov %%fs:0, %0" : "=r"(t));
  return t;
#else
#error "corio: this_thread_tag (and spin_lock's pause) are written for x86-64 only"
#endif
}

/// The lock of one primitive. Critical sections are a few dozen instructions and never block, so
/// a waiter spins (with a pause, then yielding the CPU after a while) instead of parking.
///
/// Home bias. A lock constructed with `home_bias` on the only worker of a one-worker runtime
/// belongs to that worker's thread, its home, as long as no other thread takes it: there, lock()
/// and unlock() are plain stores to `home_busy_`, a flag only the home thread writes, and no
/// locked instruction. The first other thread to take it revokes the bias for good
/// (revoke_bias): holding the real lock `locked_`, it clears `biased_`, runs a process-wide
/// memory barrier (membarrier, which makes the home thread's store to `home_busy_` visible or
/// its later read of `biased_` see the clear) and waits for `home_busy_` to drop. From then on
/// every thread, home included, takes `locked_`.
///
/// The revoker waits for the home thread to leave its critical section, as it would wait for
/// any holder to unlock, so the lock order that keeps plain spin locks free of deadlock (a
/// condition_variable's lock before a mutex's, select's address order) does the same here.
/// Only a one-worker runtime biases (its tasks never change threads); with several workers, a
/// task that moved would revoke the lock of every primitive it touches, a system call each.
/// A thread that starts after the home thread exited may get its thread pointer, and with it
/// the home: still one thread at a time.
class spin_lock {
 public:
  struct home_bias_t {};
  static constexpr home_bias_t home_bias{};

  spin_lock() noexcept = default;
  /// Biased to the calling thread if it is the worker of a one-worker runtime whose kernel
  /// offers membarrier (kernel_features::membarrier); otherwise a plain spin lock.
  explicit spin_lock(home_bias_t) noexcept : home_(bias_home()) {
    biased_.store(home_ != 0, std::memory_order_relaxed);
  }
  spin_lock(const spin_lock&) = delete;
  spin_lock& operator=(const spin_lock&) = delete;

  void lock() noexcept {
    if (lock_at_home()) return;
    // Acquire pairs with unlock's release: the holder sees the previous holder's writes.
    if (locked_.exchange(true, std::memory_order_acquire)) lock_slow();
    if (biased_.load(std::memory_order_relaxed)) revoke_bias();
  }
  void unlock() noexcept {
    // `home_busy_` is set only on the home thread, and there only while that thread holds the
    // lock through the bias (another thread may see it set at any time).
    if (home_ == this_thread_tag() && home_busy_.load(std::memory_order_relaxed)) {
      home_busy_.store(false, std::memory_order_release);  // pairs with revoke_bias's acquire
      return;
    }
    locked_.store(false, std::memory_order_release);
  }
  /// Still biased to its home thread (tests).
  bool biased() const noexcept { return biased_.load(std::memory_order_relaxed); }

  /// After this many revocations in the process, new locks are no longer biased: a program that
  /// keeps handing fresh primitives to other threads would pay a membarrier for each.
  static constexpr unsigned revocation_limit = 256;
  /// The revocations so far, and a reset (tests).
  static unsigned revocations() noexcept;
  static void reset_revocations() noexcept;

 private:
  bool lock_at_home() noexcept {
    if (home_ != this_thread_tag()) return false;  // home_ == 0: never biased
    home_busy_.store(true, std::memory_order_relaxed);
    // Only against the compiler: the revoker's membarrier orders this store before the load
    // below on the CPU.
    std::atomic_signal_fence(std::memory_order_seq_cst);
    if (biased_.load(std::memory_order_relaxed)) return true;
    // Release: a revoker that reads this false also sees the last biased critical section.
    home_busy_.store(false, std::memory_order_release);
    return false;
  }
  static std::uintptr_t bias_home() noexcept;
  void lock_slow() noexcept;
  /// Under locked_: ends the bias, then waits until the home thread is out of its critical
  /// section.
  void revoke_bias() noexcept;

  std::uintptr_t home_ = 0;  // this_thread_tag() of the home thread; 0: not biased. Immutable.
  std::atomic<bool> locked_{false};
  std::atomic<bool> home_busy_{false};  // written by the home thread only
  std::atomic<bool> biased_{false};     // true -> false once, by a revoker holding locked_
};

struct wait_target;
class wait_list;

/// One enrollment of a waiter in one primitive's wait list. Lives in the waiting frame (or on a
/// blocked thread's stack). `list_prev`, `list_next` and `linked` are guarded by the primitive's
/// lock.
struct waiter {
  waiter* list_prev = nullptr;
  waiter* list_next = nullptr;
  wait_list* list = nullptr;  // the list it is (or was last) linked in
  wait_target* target = nullptr;
  int branch = 0;  // the value claim() writes into the target: which of its waiters won
  bool linked = false;
};

/// Who waits: a suspended coroutine or a blocked thread, with one or several enrollments (a
/// select has one per branch). Lives in the waiting frame or on the blocked thread's stack.
///
/// How a wait ends is decided once, by a compare-and-swap on `state` from `pending`:
///  - a waker (under the lock of the primitive the enrollment is in) writes the enrollment's
///    branch, completes the operation for the waiter (hands it the value, the lock, ...) and then,
///    still under that lock, calls wake();
///  - the cancel action (on the owner worker, wait_point protocol) writes `cancelled` and
///    schedules the coroutine, which unlinks its enrollments itself (under their locks) when it
///    resumes: the cancel action may not take a primitive's lock (lock order below);
///  - a select's other branches (select.hpp) write their own index.
/// A waker that loses the race unlinks the enrollment and moves on to the next waiter.
///
/// Lock order: a primitive's lock, then a task's cancel lock (begin_wait, end_wait_foreign); the
/// cancel action holds the cancel lock and takes no primitive lock. A waker wakes while holding the
/// primitive's lock, so that a frame being destroyed at shutdown (its awaiter's destructor takes
/// the same lock) never goes while a waker still touches it.
struct wait_target : deferred_action, wait_point {
  static constexpr int pending = -1;
  static constexpr int cancelled_state = -2;

  std::atomic<int> state{pending};
  sched_node node;  // the coroutine (unused for a thread)
  /// A blocked thread waits on this word (futex) instead of being scheduled.
  std::atomic<std::uint32_t> thread_word{0};
  bool is_thread = false;
  /// select only: the suspending side and the deciding side each add one once they are done;
  /// whoever comes second schedules the coroutine (the select enrolls in several places, and a
  /// branch that is not a primitive may decide before the enrollment finished).
  bool two_sided = false;
  std::atomic<std::uint32_t> arrivals{0};
  /// The worker whose thread woke the coroutine (null: a thread outside the runtime), written by
  /// the waker before it schedules the coroutine, read by the coroutine once resumed.
  worker* woken_on = nullptr;
  /// A simple_wait's worker, written when it enrolls (under the primitive's lock): the thread of
  /// its cancel action, where a waker claims it without an atomic read-modify-write
  /// (wait_list::pop_claimed). Null for a blocked thread and a select.
  worker* owner = nullptr;

  /// Claims the target for `branch`; false if its wait already ended another way.
  bool claim(int branch) noexcept {
    int expected = pending;
    // acq_rel: the winner's writes before the claim (none needed) and the loser's view of them.
    return state.compare_exchange_strong(expected, branch, std::memory_order_acq_rel,
                                         std::memory_order_acquire);
  }
  int outcome() const noexcept { return state.load(std::memory_order_acquire); }
};

/// A FIFO of enrollments, intrusive, guarded by its primitive's lock.
class wait_list {
 public:
  bool empty() const noexcept { return head_ == nullptr; }
  waiter* front() const noexcept { return head_; }
  void push_back(waiter* w) noexcept;
  void remove(waiter* w) noexcept;
  /// Unlinks enrollments from the front until one's target is claimed for it, and returns that
  /// one (the caller then completes its operation and calls wake()); nullptr if none. The
  /// enrollments skipped belong to waits that ended otherwise: their owners find them unlinked.
  /// Call it under the primitive's lock.
  waiter* pop_claimed() noexcept { return head_ != nullptr ? claim_from_front() : nullptr; }
  /// Like pop_claimed, but passes over the enrollments of `self` (a rendezvous must not pair a
  /// select's send with its own receive). Those stay linked.
  waiter* pop_claimed_except(const wait_target* self) noexcept {
    return head_ != nullptr ? claim_except(self) : nullptr;
  }

 private:
  // Out of line, for a list that is not empty.
  waiter* claim_from_front() noexcept;
  waiter* claim_except(const wait_target* self) noexcept;

  waiter* head_ = nullptr;
  waiter* tail_ = nullptr;
};

/// Ends the wait of a claimed target: schedules the coroutine or wakes the thread. Call it under
/// the lock of the primitive whose waker claimed it, after completing the operation.
void wake(wait_target& t) noexcept;

/// A wait on one primitive, by a coroutine or a blocked thread. The primitive provides:
///  - `attempt(self)`: under the lock, completes the operation now if it can (true);
///  - `enroll(self)`: under the lock, links `self` (a waiter) into the right wait list.
/// After the wait, `outcome()` tells whether it completed (0) or was cancelled.
struct simple_wait : wait_target, waiter {
  spin_lock* lock = nullptr;
  bool (*attempt)(simple_wait* self) noexcept = nullptr;
  /// What is awaited, for runtime::tasks() ("mutex lock", "channel receive", ...).
  const char* what = "wait";
  void (*enroll)(simple_wait* self) noexcept = nullptr;
  /// False for waits that must complete whatever happens to the task (joining the children of
  /// a scope being cancelled): they register no wait point, so cancellation does not reach them.
  bool cancellable = true;
  /// Completed by its own attempt (no waker involved).
  bool completed_here = false;
  /// Unlinked and done with any waker (finish() or unlink() ran): the destructor has nothing to do.
  bool settled = false;
  /// The enrollment that enroll() links: by default the waiter base; a primitive whose waiters
  /// carry data (a channel's value slot) points it at its own waiter, which must then outlive
  /// this base's destructor or be unlinked before (the derived destructor calls unlink()).
  waiter* enrollment = this;

  simple_wait() noexcept { waiter::target = this; }
  simple_wait(const simple_wait&) = delete;
  simple_wait& operator=(const simple_wait&) = delete;
  /// A frame destroyed while waiting (shutdown, or a select that never awaited it) leaves no
  /// enrollment behind.
  ~simple_wait() { unlink(); }

  /// The await_suspend of the primitive's awaiter, whose await_ready returns false: completes the
  /// operation at once if it can (false: `h` resumes now), else registers the cancellable wait
  /// and enrolls (true). A task cancelled before the wait began also resumes at once, and
  /// finish() reports it. Throws std::logic_error off a worker thread, where it would have to wait.
  bool suspend(std::coroutine_handle<> h);
  /// After resuming: true if the wait completed, false if it was cancelled (then unlinked).
  /// When a waker completed it, first takes and releases the lock once: the waker wakes us while
  /// it holds the lock, and once we got it the waker is done with the primitive -- which may
  /// then be destroyed (a wait_group in the waiter's own frame).
  bool finish() noexcept {
    if (completed_here) {  // by its own attempt: nothing linked, no waker involved
      settled = true;
      return true;
    }
    return finish_after_wait();
  }
  /// The blocking form, for threads outside the runtime: waits until completed. Throws
  /// std::logic_error on a worker thread, where blocking would stall the scheduler.
  void block();
  /// Unlinks the enrollment if it is still linked. A wait that completed by its own attempt was
  /// never enrolled, and a settled one is unlinked and done with its waker: those need no lock
  /// (the destructor after every send or receive).
  void unlink() noexcept {
    if (lock != nullptr && !completed_here && !settled) unlink_locked();
  }

 private:
  bool finish_after_wait() noexcept;
  void unlink_locked() noexcept;
};

}  // namespace corio::detail
