// corio::spawn_blocking: run a blocking function off the workers.
#pragma once

#include <corio/detail/sched_node.hpp>
#include <corio/detail/wait_point.hpp>
#include <corio/task.hpp>

#include <coroutine>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

namespace corio {

namespace detail {

class runtime_core;

/// A job for the blocking pool. Lives in the awaiting frame; the pool thread touches it from the
/// moment it is submitted until complete_blocking hands the waiter back to the runtime. The base
/// is the deferred action that submits the job once the awaiting coroutine has suspended.
struct blocking_job : deferred_action, wait_point {
  blocking_job* next_job = nullptr;                   // link in the pool's queue
  void (*execute)(blocking_job*) noexcept = nullptr;  // runs the function, then complete_blocking
  sched_node node;                                    // the awaiting coroutine
  runtime_core* runtime = nullptr;
  std::exception_ptr error;  // the function's exception, or why the pool could not run it
};

/// Suspends `h` and, once it has suspended, queues `job` on the current runtime's blocking pool.
/// Throws std::logic_error off a worker thread.
void submit_blocking(blocking_job& job, std::coroutine_handle<> h);

/// Called by the pool thread when the job finished: schedules the waiter. The job (and the frame
/// around it) may be destroyed by another thread as soon as this is called.
void complete_blocking(blocking_job& job) noexcept;
[[noreturn]] void throw_blocking_cancelled();

template <class F, class R>
class blocking_op final : public blocking_job {
 public:
  explicit blocking_op(F&& fn) : fn_(std::move(fn)) { execute = &run; }
  blocking_op(const blocking_op&) = delete;
  blocking_op& operator=(const blocking_op&) = delete;

  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) { submit_blocking(*this, h); }
  R await_resume() {
    if (cancelled) throw_blocking_cancelled();
    if (error) std::rethrow_exception(error);
    if constexpr (std::is_void_v<R>) {
      return;
    } else if constexpr (std::is_reference_v<R>) {
      return static_cast<R>(**value_);
    } else {
      return std::move(*value_);
    }
  }

 private:
  using stored = std::conditional_t<std::is_reference_v<R>, std::remove_reference_t<R>*, R>;

  static void run(blocking_job* job) noexcept {
    auto* self = static_cast<blocking_op*>(job);
    try {
      if constexpr (std::is_void_v<R>) {
        std::invoke(self->fn_);
      } else if constexpr (std::is_reference_v<R>) {
        self->value_.emplace(std::addressof(std::invoke(self->fn_)));
      } else {
        self->value_.emplace(std::invoke(self->fn_));
      }
    } catch (...) {
      self->error = std::current_exception();
    }
    complete_blocking(*self);  // last touch of *self
  }

  F fn_;
  std::conditional_t<std::is_void_v<R>, bool, std::optional<stored>> value_{};
};

}  // namespace detail

/// Runs `fn()` on the runtime's blocking pool and returns its value (or rethrows its exception)
/// to the awaiting task. Use it for calls that block a thread: getaddrinfo, a synchronous
/// library, a long computation.
///
/// Like every task it is lazy: the job is queued when the task is awaited. The pool starts
/// threads on demand up to runtime_options::max_blocking_threads (beyond that, jobs wait in a
/// queue) and lets a thread exit after runtime_options::blocking_keep_alive without work. The
/// awaiting task resumes on a worker, never on the pool thread. A running job cannot be
/// interrupted: cancelling the task drops the job if it has not started (operation_cancelled),
/// else waits for it; when block_on's main task finishes, jobs not started yet are dropped and
/// block_on waits for running ones to return.
template <class F>
auto spawn_blocking(F fn) -> task<std::invoke_result_t<std::decay_t<F>&>> {
  using R = std::invoke_result_t<std::decay_t<F>&>;
  if constexpr (std::is_void_v<R>) {
    co_await detail::blocking_op<F, R>(std::move(fn));
  } else {
    co_return co_await detail::blocking_op<F, R>(std::move(fn));
  }
}

}  // namespace corio
