// corio::condition_variable: wait for a condition under a corio::mutex.
#pragma once

#include <corio/detail/wait_list.hpp>
#include <corio/sync/mutex.hpp>
#include <corio/task.hpp>

namespace corio {

/// A condition variable for tasks, used with corio::mutex.
///
/// `co_await cv.wait(g)` atomically releases the mutex that the guard `g` owns and waits for a
/// notification, then re-acquires the mutex before it returns. "Atomically": the waiter is
/// enrolled under the condition variable's lock before the mutex is released, so a notify_one() or
/// notify_all() made after that release -- in particular by a task that changed the condition
/// under the mutex -- is never lost. There are no spurious wake-ups, but the condition may have
/// changed again by the time the mutex is re-held: re-check it (the predicate form does).
///
/// Cancellation: the wait for the notification is cancellable; re-acquiring the mutex is not, so
/// that, as with std::condition_variable, `g` owns the mutex again whenever wait returns or throws.
/// A task cancelled while waiting for the notification re-acquires the mutex, then throws
/// corio::operation_cancelled; it consumed no notification (a notify_one goes to another waiter).
/// A cancellation that arrives after the notification was taken lets the wait return normally;
/// the task sees it at its next suspension. If the waiting frame is destroyed (shutdown) while
/// the mutex is released, `g` is left owning nothing.
///
/// Resumes on any worker. There is no blocking form for plain threads. The condition variable
/// must outlive its waiters, and `g` the wait.
class condition_variable {
 public:
  condition_variable() noexcept = default;
  condition_variable(const condition_variable&) = delete;
  condition_variable& operator=(const condition_variable&) = delete;

  /// Releases `g`'s mutex, waits for a notification, re-acquires the mutex (see the class
  /// comment). Throws std::logic_error if `g` owns nothing.
  [[nodiscard]] task<> wait(mutex::guard& g);
  /// Waits until `pred()` is true, calling it with the mutex held: `while (!pred()) co_await
  /// wait(g);`. An exception from `pred` propagates with the mutex held.
  template <class Predicate>
  [[nodiscard]] task<> wait(mutex::guard& g, Predicate pred) {
    while (!pred()) co_await wait(g);
  }
  /// Wakes the longest waiter, if any.
  void notify_one() noexcept;
  /// Wakes every waiter enrolled now.
  void notify_all() noexcept;

 private:
  class notify_wait;
  struct relock_state;
  static void disown(mutex::guard& g) noexcept { g.m_ = nullptr; }
  static bool attempt(detail::simple_wait* w) noexcept;
  static void enroll(detail::simple_wait* w) noexcept;

  // Lock order: this lock, then a mutex's lock (enroll releases the mutex under it), then a task's
  // cancel lock.
  detail::spin_lock lock_{detail::spin_lock::home_bias};
  detail::wait_list waiters_;  // guarded by lock_
};

}  // namespace corio
