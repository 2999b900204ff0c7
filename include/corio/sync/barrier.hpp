// corio::barrier: a reusable rendezvous of a fixed number of participants.
#pragma once

#include <corio/detail/wait_list.hpp>

#include <coroutine>
#include <cstddef>
#include <cstdint>

namespace corio {

/// A cyclic barrier for `n` participants: `co_await b.arrive_and_wait()` waits until `n` arrivals
/// were made in the current phase, then releases them all and starts the next phase. It returns
/// true to exactly one participant per phase, the leader (the one whose arrival completed it; as
/// Go's and May's barriers elect one), false to the others.
///
/// Cancellation: a participant cancelled while waiting withdraws its arrival -- the phase then
/// needs another one -- and sees corio::operation_cancelled. If the phase completed with its
/// arrival before the cancellation took effect, its arrival stays counted and the wait returns
/// normally (false), as any operation that completed before its cancellation; the task sees the
/// cancellation at its next suspension. A waiting frame destroyed at shutdown withdraws too.
///
/// Usable from any number of workers and from plain threads (arrive_and_wait_blocking). The
/// barrier must outlive its waiters.
class barrier {
 public:
  /// Throws std::invalid_argument if `participants` is zero.
  explicit barrier(std::size_t participants);
  barrier(const barrier&) = delete;
  barrier& operator=(const barrier&) = delete;

  /// The awaiter of arrive_and_wait(); lives in the awaiting frame. It makes its arrival when
  /// awaited, not when constructed.
  class arrive_awaiter : detail::simple_wait {
   public:
    /// Made by arrive_and_wait().
    explicit arrive_awaiter(barrier& b) noexcept;
    /// Withdraws the arrival of a frame destroyed while waiting.
    ~arrive_awaiter();
    bool await_ready() noexcept { return false; }  // suspend() attempts first
    bool await_suspend(std::coroutine_handle<> h) { return suspend(h); }
    /// True for the phase's leader. Throws corio::operation_cancelled if the task was cancelled
    /// while waiting and its arrival could be withdrawn (see the class comment).
    bool await_resume();

   private:
    friend class barrier;
    barrier& barrier_;
    bool leader_ = false;    // set by the attempt that completed the phase
    bool enrolled_ = false;  // the arrival was counted while waiting
  };

  /// Arrives and waits for the phase to complete; resumes on any worker. Cancellable.
  [[nodiscard]] arrive_awaiter arrive_and_wait() noexcept { return arrive_awaiter(*this); }
  /// Arrives and blocks the calling thread until the phase completes; true for the leader. Not on
  /// a worker thread (std::logic_error).
  bool arrive_and_wait_blocking();
  /// The number of participants per phase.
  [[nodiscard]] std::size_t participants() const noexcept { return participants_; }
  /// Phases completed so far (a snapshot).
  [[nodiscard]] std::uint64_t generation() const noexcept;

 private:
  static bool attempt(detail::simple_wait* w) noexcept;
  static void enroll(detail::simple_wait* w) noexcept;

  const std::size_t participants_;
  // Lock order: this lock, then a task's cancel lock.
  mutable detail::spin_lock lock_{detail::spin_lock::home_bias};
  std::size_t arrived_ = 0;       // guarded by lock_: == the waiters linked, < participants_
  std::uint64_t generation_ = 0;  // guarded by lock_
  detail::wait_list waiters_;     // guarded by lock_: this phase's arrivals
};

}  // namespace corio
