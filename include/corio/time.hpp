// corio::sleep_for and corio::sleep_until: suspend a task until a point in time.
#pragma once

#include <corio/detail/sched_node.hpp>
#include <corio/detail/wait_point.hpp>

#include <algorithm>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <limits>
#include <type_traits>

namespace corio {

namespace detail {

struct timer_node;

/// What a timer does instead of scheduling its `node`: one static table per kind of timer, so a
/// timer in a sleeping task's frame carries one pointer, not two.
struct timer_hooks {
  /// Called on the timer's owner when the deadline passes (timeouts, accept backoff).
  void (*fire)(timer_node* self, worker& owner) noexcept;
  /// Called when the heap is cleared at shutdown with the timer still armed; may be null.
  void (*drop)(timer_node* self) noexcept;
};

/// A timer in its worker's heap. Owner-only: only the worker that armed it touches a node between
/// arming and firing (or disarming); a user that must find that worker again records it
/// (timeout_scope::timer_owner). A sleep is also the task's wait point: cancelling it takes
/// it out of the heap and resumes the task, which then throws operation_cancelled.
struct timer_node : wait_point {
  static constexpr std::uint32_t not_queued = std::numeric_limits<std::uint32_t>::max();
  // First, so that it fills the tail padding of wait_point (the layout is checked in
  // timer_heap.hpp: a sleep_op stays 64 bytes of its task's frame). Where the node is queued:
  // not_queued, its index in the heap, or its position in a wheel slot (lib/timer_queue.hpp).
  std::uint32_t heap_index = not_queued;
  sched_node node;
  std::int64_t deadline_ns = 0;        // steady_clock, nanoseconds since its epoch
  const timer_hooks* hooks = nullptr;  // null: firing schedules `node` (a sleep)
  void* context = nullptr;             // for the hooks
};

/// Puts `t` into the current worker's timer heap; `h` is resumed on that worker at or after the
/// deadline. A deadline already passed behaves like yield_now. Returns false, without
/// suspending, if the task was cancelled (`t.cancelled` is then set). Throws std::logic_error off
/// a worker thread.
bool arm_timer(timer_node& t, std::coroutine_handle<> h);
/// After a sleep or a yield: throws operation_cancelled if the wait was cancelled, or if `task`
/// (the task that suspended) has been cancelled meanwhile.
void after_wait(bool cancelled, const task_header* task);

inline std::int64_t steady_now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Durations are clamped to about 100 years so that no deadline arithmetic overflows.
inline constexpr std::int64_t max_sleep_ns = std::int64_t{100} * 365 * 24 * 3600 * 1'000'000'000;

template <class Rep, class Period>
std::int64_t duration_to_ns(std::chrono::duration<Rep, Period> d) noexcept {
  if (std::chrono::duration<double, std::nano>(d).count() >= static_cast<double>(max_sleep_ns))
    return max_sleep_ns;
  if (std::chrono::duration<double, std::nano>(d).count() <= 0) return 0;
  return std::chrono::ceil<std::chrono::nanoseconds>(d).count();  // never wake early
}

/// The deadline of an operation with an absolute deadline `deadline_ns` (corio::timeout; 0: none)
/// and a relative `timeout_ns` from now (a stream's default timeout; 0: none): `at` is the earlier
/// of the two, 0 when neither is set; `passed` says it is not in the future. One clock read, and
/// none without a deadline (a stream's default timeout costs one read per operation).
struct op_deadline {
  std::int64_t at = 0;
  bool passed = false;
};
inline op_deadline operation_deadline(std::int64_t deadline_ns, std::int64_t timeout_ns) noexcept {
  if (deadline_ns == 0 && timeout_ns <= 0) return {};
  std::int64_t now = steady_now_ns();
  std::int64_t at = deadline_ns;
  if (timeout_ns > 0)
    at = deadline_ns == 0 ? now + timeout_ns : std::min(deadline_ns, now + timeout_ns);
  return {at, at <= now};
}

}  // namespace detail

/// The awaiter returned by sleep_for and sleep_until; lives in the awaiting frame.
class sleep_op {
 public:
  /// A sleep until `deadline_ns`, nanoseconds of std::chrono::steady_clock since its epoch (0: a
  /// deadline already passed). Prefer sleep_for and sleep_until.
  explicit sleep_op(std::int64_t deadline_ns) noexcept { t_.deadline_ns = deadline_ns; }
  /// Movable until awaited (select keeps its branches in its frame); never after.
  sleep_op(sleep_op&& o) noexcept : sleep_op(o.t_.deadline_ns) {}
  sleep_op(const sleep_op&) = delete;
  sleep_op& operator=(const sleep_op&) = delete;

  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) { return detail::arm_timer(t_, h); }
  /// Returns once the deadline passed; throws operation_cancelled if the task has been cancelled
  /// by the time it resumes (the sleep then ends early).
  void await_resume() const { detail::after_wait(t_.cancelled, t_.node.task); }

 private:
  detail::timer_node t_;
};

/// `co_await sleep_for(d)` suspends the task for at least `d` (measured on
/// std::chrono::steady_clock from the call), then resumes it on the worker it slept on, unless
/// another worker steals it once it is ready. Timers are kept per worker in user space; an idle
/// worker waits in the kernel with the earliest deadline as its timeout, so sleeping costs no
/// syscall of its own. A zero or negative `d` yields like yield_now. Never fires early; fires late
/// when the worker is busy with a task that does not suspend. If the task is cancelled while (or
/// before) sleeping, the sleep ends at once and throws operation_cancelled.
template <class Rep, class Period>
[[nodiscard]] sleep_op sleep_for(std::chrono::duration<Rep, Period> d) noexcept {
  return sleep_op(detail::steady_now_ns() + detail::duration_to_ns(d));
}

/// `co_await sleep_until(tp)` suspends the task until `tp`. A steady_clock time point is used as
/// is; a time point of another clock is converted to a steady_clock deadline once, at the call
/// (later adjustments of that clock are not followed).
template <class Clock, class Duration>
[[nodiscard]] sleep_op sleep_until(std::chrono::time_point<Clock, Duration> tp) noexcept {
  if constexpr (std::is_same_v<Clock, std::chrono::steady_clock>) {
    auto since_epoch = tp.time_since_epoch();
    if (since_epoch.count() <= 0) return sleep_op(0);
    return sleep_op(detail::duration_to_ns(since_epoch));
  } else {
    auto left = tp - Clock::now();
    if (left.count() <= 0) return sleep_op(0);
    return sleep_op(detail::steady_now_ns() + detail::duration_to_ns(left));
  }
}

}  // namespace corio
