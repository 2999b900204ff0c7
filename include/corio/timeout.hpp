// corio::timeout: bound the time an awaitable may take.
#pragma once

#include <corio/detail/diagnostics.hpp>
#include <corio/detail/wait_point.hpp>
#include <corio/error.hpp>
#include <corio/task.hpp>
#include <corio/time.hpp>

#include <chrono>
#include <coroutine>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

namespace corio {

namespace detail {

/// The value type of `co_await a`.
template <class A>
decltype(auto) get_awaiter(A&& a) {
  if constexpr (requires { std::forward<A>(a).operator co_await(); }) {
    return std::forward<A>(a).operator co_await();
  } else if constexpr (requires { operator co_await(std::forward<A>(a)); }) {
    return operator co_await(std::forward<A>(a));
  } else {
    return std::forward<A>(a);
  }
}
template <class A>
using await_result_t = decltype(get_awaiter(std::declval<A>()).await_resume());

/// Awaitables that take a deadline of their own (corio's ring operations) implement
/// `with_deadline(ns)` and are timed on their worker without a coroutine.
template <class A>
concept deadline_awaitable = requires(A&& a, std::int64_t ns) {
  std::forward<A>(a).with_deadline(ns);
};

/// A timeout scope: a cancel scope of the current task, whose timer (armed on the current worker)
/// cancels it when it fires.
struct timeout_scope : cancel_scope {
  timer_node timer;
  task_header* task = nullptr;
  worker* timer_owner = nullptr;  // the worker that armed `timer` (null: never armed)
};

/// Enters the scope in the current task and arms its timer; throws std::logic_error off a worker.
void enter_timeout(timeout_scope& s, std::int64_t deadline_ns);
/// Leaves the scope if the calling thread is the timer's worker (disarming the timer); returns
/// whether it did.
bool try_exit_timeout(timeout_scope& s) noexcept;
/// Moves the task to the timer's worker, where it resumes to call try_exit_timeout.
void hop_to_timer(timeout_scope& s, resume_on_state& hop, std::coroutine_handle<> h);
bool is_operation_cancelled(const std::exception_ptr& e) noexcept;

/// `co_await exit_timeout(s)`: leaves the scope on the timer's worker -- moving there first if the
/// task was stolen meanwhile, since only that worker may touch its heap. Returns whether the
/// timer fired. Not cancellable: it always completes.
class exit_timeout {
 public:
  explicit exit_timeout(timeout_scope& s) noexcept : s_(s) {}
  bool await_ready() noexcept { return try_exit_timeout(s_); }
  void await_suspend(std::coroutine_handle<> h) { hop_to_timer(s_, hop_, h); }
  bool await_resume() noexcept {
    if (!exited_here()) (void)try_exit_timeout(s_);
    return s_.cancelled.load(std::memory_order_acquire);
  }

 private:
  bool exited_here() const noexcept { return s_.task == nullptr; }
  timeout_scope& s_;
  resume_on_state hop_;
};

/// How run_with_timeout awaits `a`: an awaitable with its own operator co_await (a task, a join
/// handle) as an rvalue, so a task's value is moved out; a plain awaiter as the named lvalue,
/// which the coroutine uses in place (GCC 12 copies an awaiter given as an xvalue or as the
/// result of a function call into the frame, and corio's awaiters cannot be copied).
template <class A>
concept has_member_co_await = requires(A&& a) {
  std::move(a).operator co_await();
};

template <class T>
using stored_t = std::conditional_t<
    std::is_void_v<T>, bool,
    std::conditional_t<std::is_reference_v<T>, std::add_pointer_t<std::remove_reference_t<T>>, T>>;

template <class R, class A>
task<R> run_with_timeout(std::int64_t deadline_ns, A&& a) {
  timeout_scope scope;
  enter_timeout(scope, deadline_ns);
  std::exception_ptr error;
  std::optional<stored_t<R>> value;
  try {
    if constexpr (std::is_void_v<R>) {
      if constexpr (has_member_co_await<A>) {
        co_await std::move(a);
      } else {
        co_await a;
      }
      value.emplace(true);
    } else if constexpr (std::is_reference_v<R>) {
      if constexpr (has_member_co_await<A>) {
        value.emplace(std::addressof(co_await std::move(a)));
      } else {
        value.emplace(std::addressof(co_await a));
      }
    } else {
      if constexpr (has_member_co_await<A>) {
        value.emplace(co_await std::move(a));
      } else {
        value.emplace(co_await a);
      }
    }
  } catch (...) {
    error = std::current_exception();
  }
  bool fired = co_await exit_timeout(scope);
  if (error) {
    // The scope's own cancellation surfaces as timed_out; the task's own cancellation, or any
    // other failure, as itself.
    if (fired && is_operation_cancelled(error) && !is_cancelled(current_task())) throw timed_out();
    std::rethrow_exception(error);
  }
  if constexpr (std::is_void_v<R>) {
    co_return;
  } else if constexpr (std::is_reference_v<R>) {
    co_return **value;
  } else {
    co_return std::move(*value);
  }
}

}  // namespace detail

/// `co_await corio::timeout(d, awaitable)`: awaits `awaitable`, but for at most `d`. When the time
/// is up, the awaitable is cancelled -- a ring operation through IORING_OP_ASYNC_CANCEL, resuming
/// only after its completion was reaped; a task, a join or a sleep through the task's cancel scope
/// -- and corio::timed_out (ETIMEDOUT) is thrown. An operation that completed before the
/// cancellation took effect returns its result normally: nothing is lost.
///
/// Use it directly in the co_await expression: it keeps a reference to `awaitable`. A corio ring
/// operation gets a timer on its own worker (no extra task); any other awaitable runs in a
/// nested task that enters a cancel scope, and awaitables inside it see operation_cancelled when
/// the time is up, unwinding to the timeout, which turns it into timed_out. Cancelling the task
/// itself still surfaces as operation_cancelled.
template <class Rep, class Period, class Awaitable>
[[nodiscard]] auto timeout(std::chrono::duration<Rep, Period> d, Awaitable&& awaitable) {
  std::int64_t deadline = detail::steady_now_ns() + detail::duration_to_ns(d);
  if constexpr (detail::deadline_awaitable<Awaitable>) {
    return std::forward<Awaitable>(awaitable).with_deadline(deadline);
  } else {
    using R = detail::await_result_t<Awaitable>;
    return detail::run_with_timeout<R>(deadline, std::forward<Awaitable>(awaitable));
  }
}

}  // namespace corio
