// The out-of-line protocol between a spawned task (its "root"), its join_handle and the runtime.
// The task header itself is private to the library (lib/task_header.hpp); templates only hold a
// pointer to it and call these functions.
#pragma once

#include <corio/detail/sched_node.hpp>
#include <corio/detail/wait_point.hpp>

#include <coroutine>
#include <cstdint>
#include <exception>

namespace corio::detail {

class promise_base;
class runtime_core;
struct result_cell_ops;

/// Where a new root task may run.
enum class spawn_kind : std::uint8_t {
  any,    // any worker; stealable
  local,  // pinned to the worker that spawns it
};

/// Makes `frame` (a task's coroutine, not started) a root task of the current runtime and schedules
/// it. Takes ownership of the frame: on error (no current runtime, spawn_local off a worker) it
/// destroys the frame and throws std::logic_error; a null frame (an empty task) throws too. Returns
/// the header, referenced by one handle.
/// `cell_ops`: the promise type's cell_ops().
task_header* spawn_root(std::coroutine_handle<> frame, promise_base* promise,
                        const result_cell_ops* cell_ops, spawn_kind kind);

/// The same on a given runtime, callable from any thread (runtime::spawn).
task_header* spawn_root_on(runtime_core& rt, std::coroutine_handle<> frame, promise_base* promise,
                           const result_cell_ops* cell_ops);

/// Called from the root coroutine's final_suspend (on a worker); returns the handle to transfer to.
std::coroutine_handle<> root_final(task_header* task) noexcept;

/// True once the task finished (or was cancelled). Acquire: the result is visible afterwards.
bool join_ready(const task_header* task) noexcept;

/// True if the task was destroyed by shutdown or cancellation instead of finishing.
bool join_cancelled(const task_header* task) noexcept;

/// After the task finished: the exception it ended with (or none), and its result cell (a
/// std::optional of the value, or of a pointer for a reference result), null if the result stayed
/// in the frame (an over-aligned type; see result_cell_ops in task.hpp).
const std::exception_ptr& task_exception(const task_header* task) noexcept;
void* task_result_cell(const task_header* task) noexcept;

/// Registers the suspended joiner `h`; the joiner is scheduled once the task finishes (possibly at
/// once, if it finished meanwhile). The registration itself runs after `h` has fully suspended.
/// The deferred action publishes the waiter once the joiner has suspended; the wait point lets
/// the joiner be cancelled (the joined task goes on).
struct join_waiter : deferred_action, wait_point {
  sched_node node;
  task_header* task = nullptr;  // the joined task
};
void join_suspend(join_waiter& waiter, task_header* task, std::coroutine_handle<> h);

/// Drops the handle's reference. If the task already finished, its frame (and result) is destroyed;
/// an exception the handle never observed goes to the runtime's unhandled-exception hook.
/// `observed` says the handle took the result (join), so nothing is reported.
void release_handle(task_header* task, bool observed) noexcept;

/// The task's id: unique in the process, never 0.
std::uint64_t task_id(const task_header* task) noexcept;

/// join_handle::cancel: asks the task to stop (any thread).
void cancel_task(task_header* task);

}  // namespace corio::detail
