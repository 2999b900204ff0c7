// The two intrusive records the scheduler moves around. Neither is ever allocated on its own: a
// sched_node lives in an awaiter (inside a coroutine frame) or in a task header, so making a
// coroutine runnable never allocates.
#pragma once

#include <coroutine>

namespace corio::detail {

class task_header;
class worker;

/// One suspended coroutine of one task, ready to be resumed.
///
/// Ownership: while a node sits in a ready queue (a worker's run queue, its pinned list or inbox,
/// or the global queue), the queue owns it and the coroutine that embeds it must not touch it. The
/// worker that pops it resumes `handle`; at shutdown queues are dropped without resuming.
struct sched_node {
  sched_node* next = nullptr;      // link for the intrusive queues; meaningless elsewhere
  std::coroutine_handle<> handle;  // the coroutine to resume
  task_header* task = nullptr;     // the root task it belongs to (pinning, stats, diagnostics)
};

/// Work a worker runs right after the coroutine it resumed has suspended.
///
/// An awaiter that must hand itself to another thread (a join, a yield into a stealable queue,
/// a job for the blocking pool) does not publish from inside await_suspend: another thread could
/// resume and free the frame while await_suspend is still running (llvm#64152, seastar#3106).
/// Instead it registers an action here; the worker runs it after resume() returned, when no code
/// of the frame is on the stack.
struct deferred_action {
  deferred_action* next = nullptr;
  void (*run)(deferred_action* self, worker& w) noexcept = nullptr;
};

}  // namespace corio::detail
