// corio::yield_now: let other ready tasks run.
#pragma once

#include <corio/detail/sched_node.hpp>

#include <coroutine>

namespace corio {

namespace detail {
/// Queues `node` (resuming `h`) at the back of the current worker's run queue once `h` suspended.
/// Throws std::logic_error off a worker thread.
void suspend_yield(sched_node& node, std::coroutine_handle<> h);
void after_wait(bool cancelled, const task_header* task);
}  // namespace detail

/// The awaiter returned by yield_now(); lives in the awaiting frame.
class yield_op {
 public:
  /// Made by yield_now().
  yield_op() noexcept = default;
  yield_op(const yield_op&) = delete;
  yield_op& operator=(const yield_op&) = delete;

  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) { detail::suspend_yield(node_, h); }
  /// Throws operation_cancelled if the task has been cancelled by the time it resumes.
  void await_resume() const { detail::after_wait(false, node_.task); }

 private:
  detail::sched_node node_;
};

/// `co_await yield_now()` suspends the task and puts it at the back of its worker's run queue, so
/// every task that was ready before runs first, and I/O completions and timers are polled at least
/// every few dozen resumptions. The task may be stolen meanwhile and resume on another worker.
/// Does not sleep and does not park the worker. Throws operation_cancelled on resumption if the
/// task was cancelled, so a loop that yields observes cancellation.
[[nodiscard]] inline yield_op yield_now() noexcept {
  return {};
}

}  // namespace corio
