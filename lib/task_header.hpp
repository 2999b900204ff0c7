// task_header: the record of one root task (spawned, or block_on's main task).
//
// Ownership:
//
//   join_handle ----(HANDLE bit)----+
//                                   v
//   runtime registry ---------> task_header ----owns----> root coroutine frame (task<T>)
//   (until the task finishes)       |                      (suspended at final_suspend once
//                                   +--joiner--> sched_node    finished; holds the result)
//
// The header and the frame are freed together by whoever comes last: the task finishing (sets
// COMPLETE) or the handle going away (clears HANDLE). While HANDLE is set the frame stays at its
// final suspension point so the handle can take the result.
#pragma once

#include <corio/detail/root.hpp>
#include <corio/detail/sched_node.hpp>
#include <corio/task.hpp>

#include <atomic>
#include <coroutine>
#include <cstdint>

namespace corio::detail {

class runtime_core;
class worker;

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
  static constexpr std::uint32_t cancelled = 1u << 3;

  sched_node start;  // schedules the first resumption
  std::coroutine_handle<> frame;
  promise_base* promise = nullptr;  // valid while the frame lives
  runtime_core* runtime = nullptr;
  worker* pinned = nullptr;  // spawn_local: the only worker that may run the task
  std::uint64_t id = 0;
  sched_node* joiner = nullptr;  // written before join_waiting is set (release), read after
  std::atomic<std::uint32_t> state{handle};

  // Registry links, guarded by the registry shard's mutex.
  task_header* reg_prev = nullptr;
  task_header* reg_next = nullptr;
  std::uint32_t reg_shard = 0;
  bool registered = false;

  static task_header* create(runtime_core& rt, std::coroutine_handle<> frame, promise_base& promise,
                             worker* pinned);
  /// Destroys the frame unless it was already destroyed (cancelled), then frees the header.
  void destroy() noexcept;
};

/// A process-unique task id, never 0; ids are handed out in per-thread blocks.
std::uint64_t next_task_id() noexcept;

}  // namespace corio::detail
