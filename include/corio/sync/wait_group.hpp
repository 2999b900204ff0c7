// corio::wait_group: wait for a collection of tasks to finish (Go's sync.WaitGroup).
#pragma once

#include <corio/detail/wait_list.hpp>

#include <coroutine>
#include <cstddef>

namespace corio {

/// A counter of outstanding work: add(n) before starting n pieces of work, done() as each
/// finishes, and `co_await wg.wait()` until the counter is back at zero.
///
/// Every waiter enrolled when the counter reaches zero is released, on any worker. The group may
/// be reused once its waits returned: add() after zero starts a new round. Usable from any number
/// of workers and from plain threads (wait_blocking). The group must outlive its waiters.
///
/// Call add() before the work (the spawn) it counts, not inside it: a wait that runs first would
/// otherwise see zero and return at once.
class wait_group {
 public:
  wait_group() noexcept = default;
  wait_group(const wait_group&) = delete;
  wait_group& operator=(const wait_group&) = delete;

  /// The awaiter of wait(); lives in the awaiting frame.
  class wait_awaiter : detail::simple_wait {
   public:
    /// Made by wait().
    explicit wait_awaiter(wait_group& g) noexcept;
    bool await_ready() noexcept { return false; }  // suspend() attempts first
    bool await_suspend(std::coroutine_handle<> h) { return suspend(h); }
    /// Throws corio::operation_cancelled if the task was cancelled while waiting.
    void await_resume();

   private:
    friend class wait_group;
    wait_group& group_;
  };

  /// Adds `n` (which may be negative) to the counter; reaching zero releases every waiter.
  /// Throws std::logic_error, changing nothing, if the counter would go below zero.
  void add(std::ptrdiff_t n = 1);
  /// add(-1): one piece of work finished. Throws std::logic_error if the counter is zero.
  void done();
  /// The counter now (a snapshot).
  [[nodiscard]] std::size_t count() const noexcept;
  /// Waits until the counter is zero; does not suspend if it is zero already. Cancellable.
  [[nodiscard]] wait_awaiter wait() noexcept { return wait_awaiter(*this); }
  /// Blocks the calling thread until the counter is zero; not on a worker thread
  /// (std::logic_error).
  void wait_blocking();

 private:
  static bool attempt(detail::simple_wait* w) noexcept;
  static void enroll(detail::simple_wait* w) noexcept;

  // Lock order: this lock, then a task's cancel lock.
  mutable detail::spin_lock lock_{detail::spin_lock::home_bias};
  std::ptrdiff_t count_ = 0;   // guarded by lock_; never negative
  detail::wait_list waiters_;  // guarded by lock_; empty of live waiters while count_ == 0
};

}  // namespace corio
