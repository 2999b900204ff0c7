// corio::event: a manual-reset event for tasks and threads.
#pragma once

#include <corio/detail/wait_list.hpp>

#include <coroutine>

namespace corio {

/// A manual-reset event: set() releases every waiter and lets later waits through at once, until
/// reset(). A waiter enrolled before set() is released by it even if reset() follows at once; a
/// wait that starts after the reset() waits for the next set().
///
/// Usable from any number of workers and from plain threads (wait_blocking). The event must
/// outlive its waiters. It carries no value and counts nothing: several set() calls are one.
class event {
 public:
  /// An event that is clear, or set if `initially_set`.
  explicit event(bool initially_set = false) noexcept : set_(initially_set) {}
  event(const event&) = delete;
  event& operator=(const event&) = delete;

  /// The awaiter of wait(); lives in the awaiting frame.
  class wait_awaiter : detail::simple_wait {
   public:
    /// Made by wait().
    explicit wait_awaiter(event& e) noexcept;
    bool await_ready() noexcept { return false; }  // suspend() attempts first
    bool await_suspend(std::coroutine_handle<> h) { return suspend(h); }
    /// Throws corio::operation_cancelled if the task was cancelled while waiting.
    void await_resume();

   private:
    friend class event;
    event& event_;
  };

  /// Sets the event and releases every waiter; they resume on any worker.
  void set() noexcept;
  /// Clears the event: later waits wait for the next set().
  void reset() noexcept;
  /// Whether the event is set now (a snapshot).
  [[nodiscard]] bool is_set() const noexcept;
  /// Waits until the event is set; does not suspend if it is set already. Cancellable.
  [[nodiscard]] wait_awaiter wait() noexcept { return wait_awaiter(*this); }
  /// Blocks the calling thread until the event is set; not on a worker thread (std::logic_error).
  void wait_blocking();

 private:
  static bool attempt(detail::simple_wait* w) noexcept;
  static void enroll(detail::simple_wait* w) noexcept;

  // Lock order: this lock, then a task's cancel lock.
  mutable detail::spin_lock lock_{detail::spin_lock::home_bias};
  bool set_;                   // guarded by lock_
  detail::wait_list waiters_;  // guarded by lock_; empty of live waiters while set_
};

}  // namespace corio
