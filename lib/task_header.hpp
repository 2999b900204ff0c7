// task_header: the record of one root task (spawned, or block_on's main task).
//
// Ownership:
//
//   join_handle ----(HANDLE bit)----+
//                                   v
//   runtime registry ---------> task_header ----owns----> root coroutine frame (task<T>)
//   (until the task finishes)       |                      (suspended at final_suspend once
//                                   +--joiner--> join_waiter   finished; holds the result)
//
// The header and the frame are freed together by whoever comes last: the task finishing (sets
// COMPLETE), the handle going away (clears HANDLE), or a pending cancellation message being
// processed (clears CANCEL_MSG). While HANDLE is set the frame stays at its final suspension point
// so the handle can take the result.
#pragma once

#include <corio/detail/root.hpp>
#include <corio/detail/sched_node.hpp>
#include <corio/detail/wait_point.hpp>
#include <corio/task.hpp>

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>

namespace corio::detail {

class runtime_core;
class worker;
class local_storage;  // task_local values (task_local.cpp)

/// The base is the deferred action that completes the task after its final suspension.
class task_header : public deferred_action {
 public:
  /// The task finished (frame at final_suspend) or was cancelled (frame destroyed).
  static constexpr std::uint32_t complete = 1u << 0;
  /// `joiner` holds a suspended joiner; whoever sees this bit together with `complete` first
  /// (the finishing worker, or the joiner itself) schedules it, exactly once.
  static constexpr std::uint32_t join_waiting = 1u << 1;
  /// A join_handle references the header.
  static constexpr std::uint32_t handle = 1u << 2;
  /// The frame was destroyed by shutdown before finishing: there is no result.
  static constexpr std::uint32_t destroyed = 1u << 3;
  /// A cancellation message for this task sits in a worker's inbox (cancel.cpp); it keeps the
  /// header alive until the worker processed it.
  static constexpr std::uint32_t cancel_msg = 1u << 4;

  /// Schedules the first resumption. Its `handle` is the root frame, also after the task started
  /// (nothing schedules this node twice): the frame is destroyed as soon as the task finished
  /// (release_frame) unless its result must stay in it (no cell), and `handle` is null once
  /// destroyed that way. frame() reads it.
  sched_node start;
  promise_base* promise = nullptr;  // valid while the frame lives
  /// The result, moved out of the frame when it finished: the exception, and the value in the
  /// cell that follows the header in the same allocation (cell(); `cell_ops`: how to destroy it).
  std::exception_ptr exception;
  const result_cell_ops* cell_ops = nullptr;
  runtime_core* runtime = nullptr;
  worker* pinned = nullptr;  // spawn_local: the only worker that may run the task
  std::uint64_t id = 0;
  join_waiter* joiner = nullptr;  // written before join_waiting is set (release), read after
  std::atomic<std::uint32_t> state{handle};
  // The one-byte and four-byte fields of the groups below sit here, together, so that the header
  // has no padding holes (every task has a header: 8 bytes more or less show per sleeping task).
  std::atomic<bool> cancel_lock{false};  // cancellation: guards wait, wait_owner and scope
  std::atomic<bool> cancel_flag{false};  // cancellation: join_handle::cancel, sticky
  bool registered = false;               // registry: guarded by the shard's mutex
  std::uint32_t reg_shard = 0;           // registry: the shard, fixed at creation
  std::uint32_t alloc_size = 0;          // the header and its cell (create refuses more)

  // Cancellation (cancel.cpp). `wait`, `wait_owner` and `scope` are guarded by `cancel_lock`,
  // except that the wait's owner clears `wait` without it when the wait completes there.
  std::atomic<wait_point*> wait{nullptr};
  worker* wait_owner = nullptr;
  cancel_scope* scope = nullptr;       // innermost active timeout scope
  task_header* cancel_next = nullptr;  // link in a worker's cancel inbox
  /// The owner's clear of `wait` when the wait completes there (cancel.cpp step 4): no lock, and
  /// release, so that a poke or a snapshot that reads null sees the wait's outcome before it.
  void clear_wait_on_owner() noexcept { wait.store(nullptr, std::memory_order_release); }

  // Diagnostics (task_dump.cpp): when the registered wait began (written with `wait`), and the
  // name the task gave itself (set_task_name: owner-only, the task's own code writes it).
  std::int64_t wait_since_ns = 0;
  std::unique_ptr<char[]> name;

  // task_local values: null until the task (or the task that spawned it) sets one. Owner-only:
  // only the task's own code reads or replaces it; a shared storage is never written
  // (copy-on-write, task_local.cpp). Released by destroy().
  local_storage* locals = nullptr;

  // Registry links, guarded by the registry shard's mutex.
  task_header* reg_prev = nullptr;
  task_header* reg_next = nullptr;

  std::coroutine_handle<> frame() const noexcept { return start.handle; }
  /// The result cell, or null: task<void>, or a result that stays in the frame.
  void* cell() const noexcept;

  /// `ops`: how to make the result cell (task_promise<T>::cell_ops(); null: the result stays in
  /// the frame).
  static task_header* create(runtime_core& rt, std::coroutine_handle<> frame, promise_base& promise,
                             const result_cell_ops* ops, worker* pinned);
  /// Destroys the frame unless it was already destroyed (by shutdown, or release_frame), then
  /// frees the header.
  void destroy() noexcept;
  /// At completion, on the finishing worker: takes the exception out of the frame and destroys
  /// the frame if the result is in the cell (its destructors run here).
  void release_frame() noexcept;
  /// Frees the header (and frame) if `state` (after the caller's transition) says nobody else
  /// holds it: COMPLETE with neither HANDLE nor CANCEL_MSG.
  bool destroy_if_unreferenced(std::uint32_t state) noexcept {
    if ((state & (complete | handle | cancel_msg)) != complete) return false;
    destroy();
    return true;
  }
  /// Whether an exception the task ended with must go to the unhandled-exception hook: it has
  /// one, nobody joined it, and it is not the operation_cancelled of a cancelled task.
  bool has_unobserved_exception() const noexcept;
};

/// Where a task's result cell starts: right after its header, aligned for any type the cell
/// accepts (over-aligned results stay in the frame).
inline constexpr std::size_t task_cell_offset =
    (sizeof(task_header) + alignof(std::max_align_t) - 1) / alignof(std::max_align_t) *
    alignof(std::max_align_t);

inline void* task_header::cell() const noexcept {
  if (cell_ops == nullptr || cell_ops->size == 0) return nullptr;
  return const_cast<char*>(reinterpret_cast<const char*>(this)) + task_cell_offset;
}

/// A process-unique task id, never 0; ids are handed out in per-thread blocks.
std::uint64_t next_task_id() noexcept;

/// task_local.cpp: one more / one less task using `s`.
void retain_locals(local_storage* s) noexcept;
void release_locals(local_storage* s) noexcept;
/// A task spawned by `parent` (null: not spawned by a task) starts with its task_local values,
/// shared until either side writes. Costs one load and branch when no task_local is used.
inline void share_locals(task_header* child, const task_header* parent) noexcept {
  if (parent != nullptr && parent->locals != nullptr) {
    retain_locals(parent->locals);
    child->locals = parent->locals;
  }
}

}  // namespace corio::detail
