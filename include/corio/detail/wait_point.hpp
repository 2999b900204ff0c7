// The cancellation protocol's view of a suspended task: one wait point at a time.
#pragma once

#include <atomic>

namespace corio::detail {

class task_header;
class worker;

/// Where a task is suspended, for cancellation: a ring operation, a sleep, a join, a blocking job.
/// Lives in the awaiter, in the task's frame.
///
/// A task has at most one registered wait point. Cancelling the task (or a cancel scope it is in)
/// never touches the wait point from the requesting thread: the request goes, as a message, to the
/// worker that registered it (its owner), which runs `cancel` there. `cancel` must make the waiting
/// coroutine runnable exactly once, now or later -- for a ring op, when the kernel's completion of
/// the cancelled op has been reaped -- and sets `cancelled` so the awaiter reports it.
struct wait_point {
  void (*cancel)(wait_point* self, worker& owner) noexcept = nullptr;
  bool cancelled = false;  // owner thread, before the coroutine is made runnable
};

/// An active timeout scope of a task (corio::timeout around an awaitable that is not a single ring
/// operation). Scopes nest; the task's innermost one is in its header.
struct cancel_scope {
  cancel_scope* parent = nullptr;
  std::atomic<bool> cancelled{false};
};

/// Registers `p` as the wait point of task `t`, suspending on worker `w` (the caller's). Returns
/// false, registering nothing, if `t` or one of its active scopes was cancelled: the awaiter must
/// then not suspend and must report operation_cancelled. A null `t` (no task) always succeeds.
bool begin_wait(worker& w, task_header* t, wait_point* p);
/// The wait completed on its owner worker (ring op, timer): called before the coroutine is
/// made runnable.
void end_wait_owner(task_header* t) noexcept;
/// The wait completed on another thread (a join, a blocking job): called before the coroutine is
/// made runnable.
void end_wait_foreign(task_header* t, wait_point* p) noexcept;
/// True if `t` or one of its active scopes was cancelled.
bool is_cancelled(const task_header* t) noexcept;
/// The current task of the calling worker thread (nullptr off a worker).
task_header* current_task() noexcept;
/// Throws operation_cancelled if the current task was cancelled: the check of awaiters that do not
/// suspend (a yield, a sleep whose deadline has passed).
void throw_if_cancelled();

}  // namespace corio::detail
