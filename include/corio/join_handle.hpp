// corio::join_handle<T>: the result of corio::spawn.
#pragma once

#include <corio/detail/root.hpp>
#include <corio/task.hpp>

#include <fmt/format.h>

#include <cerrno>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <optional>
#include <ostream>
#include <system_error>
#include <utility>

namespace corio {

class runtime;
template <class T>
class join_handle;

namespace detail {
template <class T>
join_handle<T> spawn_as(task<T>& t, spawn_kind kind);
[[noreturn]] void throw_empty_join_handle();
[[noreturn]] void throw_join_interrupted();
[[noreturn]] void throw_join_cancelled(std::uint64_t id);
}  // namespace detail

/// A reference to a spawned task, to wait for its result.
///
/// `co_await h` suspends until the task finished and then yields its value or rethrows its
/// exception; it consumes the result, and the handle is empty afterwards. The awaiting coroutine
/// resumes on whichever worker ran the completion or stole the resumption; a task pinned with
/// spawn_local resumes on its own worker.
///
/// Destroying (or detach()ing) a handle that was not awaited detaches the task: it keeps running,
/// and an exception it ends with goes to runtime_options::on_unhandled_exception. A handle does not
/// cancel its task. If the task was destroyed by shutdown before finishing, awaiting the handle
/// throws std::system_error with ECANCELED.
template <class T>
class join_handle {
 public:
  /// An empty handle (valid() is false).
  join_handle() noexcept = default;
  /// Takes over `other`'s task; `other` is left empty.
  join_handle(join_handle&& other) noexcept
      : task_(std::exchange(other.task_, nullptr)), frame_(std::exchange(other.frame_, nullptr)) {}
  /// Detaches the task this handle refers to (as detach() does), then takes over `other`'s.
  join_handle& operator=(join_handle&& other) noexcept {
    if (this != &other) {
      reset();
      task_ = std::exchange(other.task_, nullptr);
      frame_ = std::exchange(other.frame_, nullptr);
    }
    return *this;
  }
  join_handle(const join_handle&) = delete;
  join_handle& operator=(const join_handle&) = delete;
  ~join_handle() { reset(); }

  /// False once the handle was joined, detached or moved from.
  [[nodiscard]] bool valid() const noexcept { return task_ != nullptr; }
  /// True once the task finished (or was cancelled); `co_await` then does not suspend.
  [[nodiscard]] bool is_finished() const noexcept { return task_ && detail::join_ready(task_); }
  /// The task's id (unique in the process), or 0 for an empty handle.
  [[nodiscard]] std::uint64_t id() const noexcept { return task_ ? detail::task_id(task_) : 0; }
  /// Lets the task run on without a handle; see the class comment for exceptions.
  void detach() noexcept { reset(); }

  /// Asks the task to stop, from any thread: the operation it is suspended in (a ring operation,
  /// a sleep, a join, a queued blocking job) is cancelled -- for a ring operation through
  /// IORING_OP_ASYNC_CANCEL, resuming only after the kernel's completion was reaped -- and the task
  /// sees corio::operation_cancelled at that co_await and at every later one that would suspend, so
  /// its destructors run as the exception unwinds it. An operation that completed anyway keeps
  /// its result. Does not wait for the task: join the handle for that. Cancelling a finished task
  /// does nothing.
  void cancel() {
    if (task_) detail::cancel_task(task_);
  }

  /// Awaits the task's completion and yields its value (or rethrows its exception), emptying the
  /// handle; throws std::logic_error on an empty handle, or when it must suspend on a thread that
  /// is not a worker. If the awaiting task is cancelled while it waits, the await throws
  /// corio::operation_cancelled, but the joined task goes on and the handle stays valid (cancel
  /// it too, if that is meant). Resumes as the class comment says.
  auto operator co_await() noexcept {
    struct awaiter {
      join_handle& self;
      detail::join_waiter waiter;
      bool await_ready() const {
        if (!self.task_) detail::throw_empty_join_handle();
        return detail::join_ready(self.task_);
      }
      void await_suspend(std::coroutine_handle<> h) { detail::join_suspend(waiter, self.task_, h); }
      T await_resume() {
        // The join itself was cancelled (the joining task was): the joined task goes on, and the
        // handle stays valid.
        if (waiter.cancelled) detail::throw_join_interrupted();
        return self.take();
      }
    };
    return awaiter{*this, {}};
  }

 private:
  friend class runtime;
  template <class U>
  friend join_handle<U> detail::spawn_as(task<U>&, detail::spawn_kind);

  using promise_type = detail::task_promise<T>;
  join_handle(detail::task_header* task, std::coroutine_handle<promise_type> frame) noexcept
      : task_(task), frame_(frame) {}

  void reset() noexcept {
    if (task_) detail::release_handle(std::exchange(task_, nullptr), false);
    frame_ = nullptr;
  }

  // Moves the result out of the finished task, then releases the task (which frees its frame).
  T take() {
    struct release_guard {
      join_handle& h;
      ~release_guard() {
        detail::release_handle(std::exchange(h.task_, nullptr), true);
        h.frame_ = nullptr;
      }
    } guard{*this};
    if (detail::join_cancelled(task_)) detail::throw_join_cancelled(detail::task_id(task_));
    if (const std::exception_ptr& e = detail::task_exception(task_)) std::rethrow_exception(e);
    void* cell = detail::task_result_cell(task_);
    if constexpr (std::is_void_v<T>) {
      return;
    } else if constexpr (std::is_reference_v<T>) {
      if (cell == nullptr) return frame_.promise().result();
      return **static_cast<std::optional<std::remove_reference_t<T>*>*>(cell);
    } else {
      if (cell == nullptr) return T(std::move(frame_.promise()).result());
      return T(std::move(**static_cast<std::optional<T>*>(cell)));
    }
  }

  detail::task_header* task_ = nullptr;
  std::coroutine_handle<promise_type> frame_;
};

/// Writes "task ID" (as runtime::tasks() and dump_tasks() name it), or "task (none)" for an empty
/// handle; fmt's `{}` formats the same way.
template <class T>
std::ostream& operator<<(std::ostream& os, const join_handle<T>& h) {
  if (!h.valid()) return os << "task (none)";
  return os << "task " << h.id();
}

}  // namespace corio

/// @cond
template <class T>
struct fmt::formatter<corio::join_handle<T>> {
  constexpr auto parse(fmt::format_parse_context& ctx) { return ctx.begin(); }
  template <class Ctx>
  auto format(const corio::join_handle<T>& h, Ctx& ctx) const {
    if (!h.valid()) return fmt::format_to(ctx.out(), "task (none)");
    return fmt::format_to(ctx.out(), "task {}", h.id());
  }
};
/// @endcond
