// The library side of the cancellation protocol (cancel.cpp has the steps and the argument).
#pragma once

#include <corio/detail/wait_point.hpp>

#include <cstdint>

namespace corio::detail {

class task_header;
class worker;

/// Step 2: if `t` waits, queue a cancellation message to the wait's owner (any thread).
void poke(task_header* t);
/// Sets the task's sticky cancel flag and pokes it (join_handle::cancel; any thread).
void request_cancel(task_header* t);
/// Step 3, on worker `w`, for a message taken from its cancel inbox.
void process_cancel(task_header* t, worker& w) noexcept;
/// Shutdown: a message that will never be processed releases its reference.
void drop_cancel_message(task_header* t) noexcept;

/// The registered wait of `t`, read under its cancel lock (runtime::tasks(), any thread): a wait
/// that another thread completes (a blocking job, a foreign waker) is seen whole or not at all.
struct wait_snapshot {
  wait_point* point = nullptr;
  worker* owner = nullptr;
  std::int64_t since_ns = 0;
};
wait_snapshot registered_wait(task_header* t) noexcept;

/// The cancel action of every ring operation: IORING_OP_ASYNC_CANCEL on its own ring (ops.cpp).
void cancel_io_op(wait_point* p, worker& w) noexcept;

/// Timeout scopes (on the task's own thread, except cancel_scope_of: any thread).
void enter_scope(task_header* t, cancel_scope* s) noexcept;
void exit_scope(task_header* t, cancel_scope* s) noexcept;
void cancel_scope_of(task_header* t, cancel_scope* s);

}  // namespace corio::detail
