// corio::shared_mutex: a readers-writer lock for tasks and threads, with scoped guards.
#pragma once

#include <corio/detail/wait_list.hpp>

#include <coroutine>
#include <cstddef>
#include <utility>

namespace corio {

/// A fair readers-writer lock: any number of shared holders (readers) or one exclusive holder
/// (writer). `auto g = co_await m.lock();` takes it exclusively, `auto g = co_await
/// m.lock_shared();` shared; the guard releases it when destroyed (or on `g.unlock()`).
///
/// Fairness: one FIFO of waiters of both kinds. A lock request that finds anybody waiting queues
/// behind them, so once a writer waits, new readers wait behind it and a stream of readers cannot
/// starve it; nor can a stream of writers starve a reader. On release the lock goes to the
/// longest waiter -- a writer alone, or the whole run of consecutive readers at the front of the
/// queue together -- directly, before anybody else can take it.
///
/// Usable from any number of workers and from plain threads (the _blocking forms). Guards may be
/// released on any thread. The shared_mutex must outlive its waiters and guards. Not recursive,
/// not upgradable.
class shared_mutex {
 public:
  shared_mutex() noexcept = default;
  shared_mutex(const shared_mutex&) = delete;
  shared_mutex& operator=(const shared_mutex&) = delete;

  /// Owns the lock exclusively (or nothing: default-constructed, moved from, unlocked, or a
  /// failed try_lock). Releases it on destruction.
  class [[nodiscard]] guard {
   public:
    /// Owns nothing.
    guard() noexcept = default;
    /// Takes over `other`'s hold; `other` then owns nothing.
    guard(guard&& other) noexcept : m_(std::exchange(other.m_, nullptr)) {}
    /// Releases what this guard holds (as unlock() does), then takes over `other`'s hold.
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

    /// Releases the lock now; does nothing if the guard owns nothing.
    void unlock() noexcept {
      if (m_ != nullptr) std::exchange(m_, nullptr)->unlock();
    }
    /// True while the guard holds the lock exclusively.
    [[nodiscard]] bool owns_lock() const noexcept { return m_ != nullptr; }
    /// owns_lock().
    explicit operator bool() const noexcept { return owns_lock(); }

   private:
    friend class shared_mutex;
    explicit guard(shared_mutex* m) noexcept : m_(m) {}
    shared_mutex* m_ = nullptr;
  };

  /// Owns one share of the lock (or nothing, as for guard). Releases it on destruction.
  class [[nodiscard]] shared_guard {
   public:
    /// Owns nothing.
    shared_guard() noexcept = default;
    /// Takes over `other`'s share; `other` then owns nothing.
    shared_guard(shared_guard&& other) noexcept : m_(std::exchange(other.m_, nullptr)) {}
    /// Releases what this guard holds (as unlock() does), then takes over `other`'s share.
    shared_guard& operator=(shared_guard&& other) noexcept {
      if (this != &other) {
        unlock();
        m_ = std::exchange(other.m_, nullptr);
      }
      return *this;
    }
    shared_guard(const shared_guard&) = delete;
    shared_guard& operator=(const shared_guard&) = delete;
    ~shared_guard() { unlock(); }

    /// Releases the share now; does nothing if the guard owns nothing.
    void unlock() noexcept {
      if (m_ != nullptr) std::exchange(m_, nullptr)->unlock_shared();
    }
    /// True while the guard holds a share of the lock.
    [[nodiscard]] bool owns_lock() const noexcept { return m_ != nullptr; }
    /// owns_lock().
    explicit operator bool() const noexcept { return owns_lock(); }

   private:
    friend class shared_mutex;
    explicit shared_guard(shared_mutex* m) noexcept : m_(m) {}
    shared_mutex* m_ = nullptr;
  };

 private:
  /// One wait for the lock, of either kind (the queue holds both).
  class wait_op : protected detail::simple_wait {
   protected:
    wait_op(shared_mutex& m, bool exclusive) noexcept;
    /// Gives back a lock granted to this waiter whose frame is destroyed before it resumed
    /// (shutdown); withdraws a waiter still enrolled, letting those behind it in.
    ~wait_op();
    /// After resuming: true if the lock was granted; false if cancelled (then withdrawn).
    bool take() noexcept;

    shared_mutex& mutex_;
    const bool exclusive_;
    bool taken_ = false;  // a guard was made for the lock this wait obtained

   private:
    friend class shared_mutex;
  };

 public:
  /// The awaiter of lock(); lives in the awaiting frame.
  class lock_awaiter : wait_op {
   public:
    /// Made by lock().
    explicit lock_awaiter(shared_mutex& m) noexcept : wait_op(m, true) {}
    bool await_ready() noexcept { return false; }  // suspend() attempts first
    bool await_suspend(std::coroutine_handle<> h) { return suspend(h); }
    /// The exclusive guard. Throws corio::operation_cancelled if the task was cancelled while
    /// waiting; nothing is then held.
    guard await_resume();

   private:
    friend class shared_mutex;
  };

  /// The awaiter of lock_shared(); lives in the awaiting frame.
  class lock_shared_awaiter : wait_op {
   public:
    /// Made by lock_shared().
    explicit lock_shared_awaiter(shared_mutex& m) noexcept : wait_op(m, false) {}
    bool await_ready() noexcept { return false; }  // suspend() attempts first
    bool await_suspend(std::coroutine_handle<> h) { return suspend(h); }
    /// The shared guard. Throws corio::operation_cancelled if the task was cancelled while
    /// waiting; nothing is then held.
    shared_guard await_resume();

   private:
    friend class shared_mutex;
  };

  /// Waits until nobody holds the lock and nobody waits ahead, then takes it exclusively. Resumes
  /// on any worker. Cancellable: a cancelled waiter holds nothing, and the readers queued behind
  /// it are let in if it was all that held them back.
  [[nodiscard]] lock_awaiter lock() noexcept { return lock_awaiter(*this); }
  /// Waits until no writer holds the lock and nobody waits ahead, then takes a share. Resumes on
  /// any worker. Cancellable, holding nothing then.
  [[nodiscard]] lock_shared_awaiter lock_shared() noexcept { return lock_shared_awaiter(*this); }
  /// Takes the lock exclusively if that is possible now without overtaking a waiter.
  [[nodiscard]] guard try_lock() noexcept;
  /// Takes a share if that is possible now without overtaking a waiter.
  [[nodiscard]] shared_guard try_lock_shared() noexcept;
  /// lock() for plain threads: blocks the calling thread; on a worker thread it throws
  /// std::logic_error.
  [[nodiscard]] guard lock_blocking();
  /// lock_shared() for plain threads: blocks the calling thread; on a worker thread it throws
  /// std::logic_error.
  [[nodiscard]] shared_guard lock_shared_blocking();

 private:
  static bool attempt(detail::simple_wait* w) noexcept;
  static void enroll(detail::simple_wait* w) noexcept;
  bool can_take_locked(bool exclusive) noexcept;
  void grant_locked() noexcept;
  void unlock() noexcept;
  void unlock_shared() noexcept;

  // Lock order: this lock, then a task's cancel lock.
  detail::spin_lock lock_{detail::spin_lock::home_bias};
  bool writer_ = false;      // guarded by lock_: held exclusively (by a guard or a claimed waiter)
  std::size_t readers_ = 0;  // guarded by lock_: shares held (by guards or claimed waiters)
  detail::wait_list waiters_;  // guarded by lock_: both kinds, in arrival order
};

}  // namespace corio
