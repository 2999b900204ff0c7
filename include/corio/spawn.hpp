// corio::spawn and corio::spawn_local: start a task concurrently with the caller.
#pragma once

#include <corio/detail/root.hpp>
#include <corio/join_handle.hpp>
#include <corio/task.hpp>

namespace corio {

namespace detail {
template <class T>
join_handle<T> spawn_as(task<T>& t, spawn_kind kind) {
  auto frame = t.release();
  task_header* header =
      spawn_root(frame, frame ? &frame.promise() : nullptr, task_promise<T>::cell_ops(), kind);
  return join_handle<T>(header, frame);
}
}  // namespace detail

/// Starts `t` as a new root task of the current runtime and returns a handle to join it.
///
/// The task is queued on the calling worker and may run on, and be stolen by, any worker; the
/// caller goes on without suspending. Call it from a task or from code inside spawn_blocking; from
/// any other thread use runtime::spawn. Throws std::logic_error when there is no current runtime
/// or `t` is empty (then `t` is destroyed). Spawning after block_on's main task finished is
/// allowed: the task never runs and is destroyed with the others.
template <class T>
join_handle<T> spawn(task<T> t) {
  return detail::spawn_as(t, detail::spawn_kind::any);
}

/// Like spawn, but the task is pinned to the calling worker: it only ever runs on this thread and
/// its operations use this worker's ring (for state tied to one ring or thread). Throws
/// std::logic_error when not called from a worker thread.
template <class T>
join_handle<T> spawn_local(task<T> t) {
  return detail::spawn_as(t, detail::spawn_kind::local);
}

}  // namespace corio
