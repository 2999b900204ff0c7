// corio::scoped: structured concurrency -- children that cannot outlive the code that started them.
#pragma once

#include <corio/detail/child_group.hpp>
#include <corio/error.hpp>
#include <corio/task.hpp>

#include <exception>
#include <functional>
#include <optional>
#include <type_traits>
#include <utility>

namespace corio {

/// The handle a scoped body gets, to start children. Children may borrow anything that lives in
/// the frames around the `co_await corio::scoped(...)`: scoped returns only after every child
/// finished.
///
/// Only valid while the scoped call runs: use it from the body, or from children that got it
/// from the body. Not copyable.
class scope {
 public:
  /// Made by corio::scoped for its body; not for direct use.
  explicit scope(detail::child_group& g) noexcept : g_(g) {}
  scope(const scope&) = delete;
  scope& operator=(const scope&) = delete;

  /// Starts `t` as a child: a new root task, like corio::spawn, that may run on any worker (it
  /// inherits the caller's task_local values). Returns nothing: the child's value, if any, is
  /// discarded -- write results into state the child borrows. If the child throws, the scope
  /// is cancelled (see scoped) and the exception is reported by scoped. A child started after
  /// the scope was cancelled is cancelled before it runs (its first suspension throws
  /// operation_cancelled). Throws std::logic_error outside a runtime (then `t` is destroyed).
  template <class T>
  void spawn(task<T> t) {
    detail::spawn_child(g_, detail::new_plain_child(0), std::move(t), detail::discard_sink{});
  }

  /// Cancels the scope from any thread: every child (join_handle::cancel semantics), every child
  /// started later, and the body's remaining suspensions. Does not wait; scoped still waits for
  /// every child. The resulting operation_cancelled exceptions are not errors of the scope.
  void cancel() { g_.cancel_all(true); }

  /// Children started and not finished yet (a snapshot).
  [[nodiscard]] std::size_t active_children() const noexcept { return g_.pending(); }

 private:
  detail::child_group& g_;
};

namespace detail {
template <class F>
using scoped_value_t = typename std::invoke_result_t<F&, scope&>::value_type;
}  // namespace detail

/// `co_await corio::scoped([&](corio::scope& s) -> task<R> { ... s.spawn(child()); ... })`:
/// calls `f(s)` and awaits the task it returns (the body), then waits until every child started
/// through `s` finished, and returns the body's value (void for task<>).
///
/// Failure: the first exception of a child or of the body cancels the scope -- every other
/// child and the body's remaining suspensions see operation_cancelled (join_handle::cancel
/// semantics) -- and, once every child finished, is rethrown. The operation_cancelled
/// exceptions caused by the scope's own cancellation are not failures.
///
/// Cancellation: if the awaiting task is cancelled (join_handle::cancel, or a corio::timeout
/// around the scoped call), the body sees it as usual and the children are cancelled; scoped
/// still waits for every child -- that wait cannot be interrupted, since children may borrow
/// from the parent's frames -- and then throws operation_cancelled (which a timeout turns into
/// timed_out). A child failure before that takes precedence.
///
/// `f` is moved into the scoped coroutine's frame, so a lambda temporary is fine. Resumes on
/// the worker that finished the last child (or where the body ended). Does not impose any time
/// limit: a child that never suspends is never interrupted.
template <class F, class R = detail::scoped_value_t<F>>
task<R> scoped(F f) {
  static_assert(!std::is_reference_v<R>, "corio::scoped: the body must not return a reference");
  detail::group_ref g(detail::child_group::mode::fail_fast);
  scope s(*g);
  std::optional<detail::value_or_monostate_t<R>> value;
  std::exception_ptr body_error;
  g->enter_body();
  try {
    if constexpr (std::is_void_v<R>) {
      co_await std::invoke(f, s);
      value.emplace();
    } else {
      value.emplace(co_await std::invoke(f, s));
    }
  } catch (...) {
    body_error = std::current_exception();
  }
  g->exit_body(body_error);
  const bool parent_cancelled = co_await detail::join_children(*g);
  if (g->error()) std::rethrow_exception(g->error());
  if (body_error) std::rethrow_exception(body_error);  // the body's cancellation
  if (parent_cancelled) throw operation_cancelled();
  if constexpr (std::is_void_v<R>) {
    co_return;
  } else {
    co_return std::move(*value);
  }
}

}  // namespace corio
