// corio::task_local: a value per task, inherited by the tasks it spawns.
#pragma once

#include <corio/task.hpp>

#include <exception>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

namespace corio {

namespace detail {

/// How a task's storage copies and frees one value of a task_local (one table per type).
struct local_ops {
  void* (*clone)(const void* value);
  void (*destroy)(void* value) noexcept;
};

template <class T>
inline constexpr local_ops local_ops_for{
    [](const void* v) -> void* { return new T(*static_cast<const T*>(v)); },
    [](void* v) noexcept { delete static_cast<T*>(v); },
};

// Out of line, so that the current task is read on the thread running the code (never cached
// across a co_await: the task may have moved to another worker). Each throws std::logic_error
// when not called from a task on a worker.
/// The current task's value for `key`, or nullptr if unset. Valid until the task sets or resets
/// any task_local: copy it out at once.
const void* local_get(const void* key);
/// Sets the current task's value for `key`; takes ownership of `value` (a `new`ed object that
/// `ops.destroy` frees), also when it throws.
void local_set(const void* key, const local_ops& ops, void* value);
/// Unsets the current task's value for `key`.
void local_erase(const void* key);

}  // namespace detail

/// A variable with one value per root task (May's coroutine-local storage), like thread_local
/// for tasks:
///
///     static corio::task_local<int> request_id;
///     request_id.set(42);           // in a task
///     ... request_id.get() ...      // 42 in this task, whichever worker runs it
///
/// Scope: every coroutine a task awaits sees the task's values (they belong to the root task,
/// not to a frame). A task spawned by a task -- corio::spawn, spawn_local, runtime::spawn from a
/// task, scope::spawn, when_all, when_any, completion_queue -- starts with a copy of its
/// spawner's values, taken at the spawn: later set()s on either side are not seen by the other.
/// (The copy is lazy: the two tasks share the values until one of them writes; the first write
/// copies them. Spawning costs nothing when no task_local was ever set.) Tasks started by
/// block_on or by runtime::spawn from outside a task start empty.
///
/// The object is only a key: give it static storage duration (a destroyed task_local's values
/// stay in the tasks that set it, and a new object at the same address would see them). T must
/// be copy-constructible; values are copied out by get(), so concurrent tasks that share values
/// only ever read them. Each member throws std::logic_error when not called from a task.
template <class T>
class task_local {
  static_assert(std::is_object_v<T> && std::is_copy_constructible_v<T>,
                "corio::task_local<T>: T must be a copy-constructible object type");

 public:
  /// Reads as T{} while unset.
  task_local() requires std::is_default_constructible_v<T> : default_() {}
  /// Reads as `default_value` while unset.
  explicit task_local(T default_value) : default_(std::move(default_value)) {}
  task_local(const task_local&) = delete;
  task_local& operator=(const task_local&) = delete;

  /// The current task's value, or the default while unset.
  [[nodiscard]] T get() const {
    if (const void* v = detail::local_get(this)) return *static_cast<const T*>(v);
    return default_;
  }
  /// The current task's value, or std::nullopt while unset.
  [[nodiscard]] std::optional<T> try_get() const {
    if (const void* v = detail::local_get(this)) return *static_cast<const T*>(v);
    return std::nullopt;
  }
  /// Whether the current task has a value.
  [[nodiscard]] bool is_set() const { return detail::local_get(this) != nullptr; }
  /// Sets the current task's value (tasks it spawns from now on start with it).
  void set(T value) { detail::local_set(this, detail::local_ops_for<T>, new T(std::move(value))); }
  /// Unsets the current task's value: get() gives the default again.
  void reset() { detail::local_erase(this); }

 private:
  T default_;
};

/// `co_await corio::with_local(request_id, 7, handle())`: awaits `t` with the current task's
/// value of `local` set to `value`, then restores the previous value (or unsets it) whether `t`
/// returned or threw, and returns `t`'s value. `t` runs in the current task (it is not
/// spawned); tasks it spawns inherit `value`.
template <class T, class R>
task<R> with_local(task_local<T>& local, std::type_identity_t<T> value, task<R> t) {
  std::optional<T> saved = local.try_get();
  local.set(std::move(value));
  std::exception_ptr error;
  std::optional<std::conditional_t<
      std::is_void_v<R>, bool,
      std::conditional_t<std::is_reference_v<R>, std::remove_reference_t<R>*, R>>>
      result;
  try {
    if constexpr (std::is_void_v<R>) {
      co_await std::move(t);
      result.emplace(true);
    } else if constexpr (std::is_reference_v<R>) {
      result.emplace(std::addressof(co_await std::move(t)));
    } else {
      result.emplace(co_await std::move(t));
    }
  } catch (...) {
    error = std::current_exception();
  }
  // Restored here, not by a destructor: a frame destroyed at shutdown is not in a task.
  if (saved) {
    local.set(std::move(*saved));
  } else {
    local.reset();
  }
  if (error) std::rethrow_exception(error);
  if constexpr (std::is_void_v<R>) {
    co_return;
  } else if constexpr (std::is_reference_v<R>) {
    co_return **result;
  } else {
    co_return std::move(*result);
  }
}

}  // namespace corio
