// corio::mutex: mutual exclusion for tasks and threads, with a scoped guard.
#pragma once

#include <corio/detail/wait_list.hpp>

#include <coroutine>
#include <utility>

namespace corio {

class condition_variable;

/// A fair mutex. `auto g = co_await m.lock();` waits until the mutex is free and returns a guard
/// that owns it; the guard unlocks when it is destroyed (or on `g.unlock()`).
///
/// Fairness: unlocking hands the mutex directly to the longest waiter, so waiters are served in
/// arrival order and nobody barges ahead of them -- not a task that calls lock() or try_lock()
/// right after the unlock, not even the task that just unlocked. The cost is a hand-off per
/// contended unlock: the mutex stays locked until the new owner resumes.
///
/// Usable from any number of workers and from plain threads (lock_blocking). The guard may be
/// released on any thread, not only the one that locked. The mutex must outlive its waiters and
/// guards. It is not recursive: a task that locks a mutex it already holds waits forever.
class mutex {
 public:
  mutex() noexcept = default;
  mutex(const mutex&) = delete;
  mutex& operator=(const mutex&) = delete;

  /// Owns the mutex (or nothing: default-constructed, moved from, unlocked, or a failed try_lock).
  /// Unlocks on destruction.
  class [[nodiscard]] guard {
   public:
    /// Owns nothing.
    guard() noexcept = default;
    /// Takes over `other`'s mutex; `other` then owns nothing.
    guard(guard&& other) noexcept : m_(std::exchange(other.m_, nullptr)) {}
    /// Releases what this guard owns (as unlock() does), then takes over `other`'s mutex.
    guard& operator=(guard&& other) noexcept {
      if (this != &other) {
        unlock();
        m_ = std::exchange(other.m_, nullptr);
      }
      return *this;
    }
    guard(const guard&) = delete;
    guard& operator=(const guard&) = delete;
    ~guard() { unlock(); }

    /// Unlocks now (handing the mutex to the longest waiter, if any); does nothing if the guard
    /// owns nothing.
    void unlock() noexcept {
      if (m_ != nullptr) std::exchange(m_, nullptr)->unlock();
    }
    /// True while the guard owns the mutex.
    [[nodiscard]] bool owns_lock() const noexcept { return m_ != nullptr; }
    /// owns_lock().
    explicit operator bool() const noexcept { return owns_lock(); }

   private:
    friend class mutex;
    friend class condition_variable;
    explicit guard(mutex* m) noexcept : m_(m) {}
    mutex* m_ = nullptr;
  };

  /// The awaiter of lock(); lives in the awaiting frame.
  class lock_awaiter : detail::simple_wait {
   public:
    /// Made by lock().
    explicit lock_awaiter(mutex& m) noexcept : lock_awaiter(m, true) {}
    /// Gives the mutex back if it was handed to this waiter but the waiting frame is destroyed
    /// before resuming (shutdown); unlinks a waiter still enrolled.
    ~lock_awaiter();
    bool await_ready() noexcept { return false; }  // suspend() attempts first
    bool await_suspend(std::coroutine_handle<> h) { return suspend(h); }
    /// The guard of the now-owned mutex. Throws corio::operation_cancelled if the task was
    /// cancelled while waiting; the mutex is then not owned.
    guard await_resume();

   private:
    friend class mutex;
    friend class condition_variable;
    lock_awaiter(mutex& m, bool cancellable) noexcept;
    mutex& mutex_;
    bool taken_ = false;  // a guard was made for the ownership this wait obtained
  };

  /// Waits until the mutex is free and takes it. Resumes on whichever worker the unlocking side
  /// scheduled it to (any worker). Cancellable: a cancelled waiter does not get the mutex.
  [[nodiscard]] lock_awaiter lock() noexcept { return lock_awaiter(*this); }
  /// Takes the mutex if it is free now and nobody waits for it; otherwise returns a guard that
  /// owns nothing.
  [[nodiscard]] guard try_lock() noexcept;
  /// Takes the mutex, blocking the calling thread; not on a worker thread (std::logic_error).
  [[nodiscard]] guard lock_blocking();

 private:
  friend class condition_variable;  // releases and re-takes the mutex around its waits
  static bool attempt(detail::simple_wait* w) noexcept;
  static void enroll(detail::simple_wait* w) noexcept;
  void unlock() noexcept;
  void unlock_locked() noexcept;

  // Lock order: a condition_variable's lock, then this one, then a task's cancel lock.
  detail::spin_lock lock_{detail::spin_lock::home_bias};
  bool locked_ = false;        // guarded by lock_; owned by a guard or handed to a claimed waiter
  detail::wait_list waiters_;  // guarded by lock_
};

}  // namespace corio
