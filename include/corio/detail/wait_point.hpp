// The cancellation protocol's view of a suspended task: one wait point at a time.
#pragma once

#include <atomic>
#include <cstdint>

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
/// What kind of awaiter a wait point is, so that runtime::tasks() can describe the wait: each
/// kind is one concrete type (task_dump.cpp casts to it).
enum class wait_kind : std::uint8_t {
  none,
  io,            // io_state (io_awaiter.hpp): a socket, file or fd operation
  nop,           // nop_state: a ring NOP
  ring_timeout,  // ring_timeout_state: an IORING_OP_TIMEOUT
  sleep,         // timer_node (time.hpp)
  join,          // join_waiter (root.hpp)
  blocking,      // blocking_job (blocking.hpp)
  sync,          // simple_wait (wait_list.hpp): a channel, mutex, semaphore, ...
  select,        // select_state (select.cpp)
  accept,        // incoming_waiter (net/incoming.hpp)
  pooled_read,   // pooled_wait (pooled_read.hpp)
};

struct wait_point {
  void (*cancel)(wait_point* self, worker& owner) noexcept = nullptr;
  bool cancelled = false;            // owner thread, before the coroutine is made runnable
  wait_kind kind = wait_kind::none;  // set by begin_wait
};

/// An active timeout scope of a task (corio::timeout around an awaitable that is not a single ring
/// operation). Scopes nest; the task's innermost one is in its header.
struct cancel_scope {
  cancel_scope* parent = nullptr;
  std::atomic<bool> cancelled{false};
};

/// Registers `p` (a `kind`) as the wait point of task `t`, suspending on worker `w` (the caller's),
/// and notes when the wait began (the worker's clock of its last poll, no clock read). Returns
/// false, registering nothing, if `t` or one of its active scopes was cancelled: the awaiter must
/// then not suspend and must report operation_cancelled. A null `t` (no task) always succeeds.
bool begin_wait(worker& w, task_header* t, wait_point* p, wait_kind kind);
/// The wait completed on its owner worker (ring op, timer): called before the coroutine is
/// made runnable.
void end_wait_owner(task_header* t) noexcept;
/// The wait completed on another thread (a join, a blocking job): called before the coroutine is
/// made runnable.
void end_wait_foreign(task_header* t, wait_point* p) noexcept;
/// end_wait_foreign for a waker on worker `w` (null: off the runtime) that knows the wait's
/// registration happened before (it holds the lock of the primitive the waiter enrolled under,
/// after begin_wait): on the wait's owner worker it clears the wait without the cancel lock.
void end_wait_enrolled(worker* w, task_header* t, wait_point* p) noexcept;
/// True if `t` or one of its active scopes was cancelled.
bool is_cancelled(const task_header* t) noexcept;
/// The current task of the calling worker thread (nullptr off a worker).
task_header* current_task() noexcept;
/// Throws operation_cancelled if the current task was cancelled: the check of awaiters that do not
/// suspend (a yield, a sleep whose deadline has passed).
void throw_if_cancelled();

}  // namespace corio::detail
