// corio::semaphore: a counting semaphore for tasks and threads.
#pragma once

#include <corio/detail/wait_list.hpp>

#include <coroutine>
#include <cstddef>

namespace corio {

/// A counting semaphore. `co_await s.acquire()` takes a permit, waiting while there is none;
/// release() returns permits. Waiters are served in arrival order: a released permit goes to the
/// longest waiter directly, so a stream of try_acquire calls cannot starve it.
///
/// Usable from any number of workers and from plain threads (acquire_blocking). The semaphore must
/// outlive its waiters.
class semaphore {
 public:
  /// A semaphore holding `initial` permits. There is no maximum: release() may add any number.
  explicit semaphore(std::size_t initial = 0) noexcept : count_(initial) {}
  semaphore(const semaphore&) = delete;
  semaphore& operator=(const semaphore&) = delete;

  /// The awaiter of acquire(); lives in the awaiting frame.
  class acquire_awaiter : detail::simple_wait {
   public:
    /// Made by acquire().
    explicit acquire_awaiter(semaphore& s) noexcept;
    bool await_ready() noexcept { return false; }  // suspend() attempts first
    bool await_suspend(std::coroutine_handle<> h) { return suspend(h); }
    /// Throws corio::operation_cancelled if the task was cancelled while waiting (no permit
    /// taken).
    void await_resume();

   private:
    friend class semaphore;
    semaphore& sem_;
  };

  /// Takes a permit, waiting while there is none. Cancellable.
  [[nodiscard]] acquire_awaiter acquire() noexcept { return acquire_awaiter(*this); }
  /// Takes a permit if one is free now.
  [[nodiscard]] bool try_acquire() noexcept;
  /// Takes a permit, blocking the calling thread; not on a worker thread (std::logic_error).
  void acquire_blocking();
  /// Returns `n` permits, waking up to `n` waiters.
  void release(std::size_t n = 1) noexcept;
  /// The free permits now (a snapshot).
  [[nodiscard]] std::size_t available() const noexcept;

 private:
  static bool attempt(detail::simple_wait* w) noexcept;
  static void enroll(detail::simple_wait* w) noexcept;

  mutable detail::spin_lock lock_{detail::spin_lock::home_bias};
  std::size_t count_;          // guarded by lock_
  detail::wait_list waiters_;  // guarded by lock_
};

}  // namespace corio
