// Live task inspection: what every task of a runtime is doing, with its async backtrace.
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

namespace corio {

/// One coroutine of a task's async backtrace: the function and the `co_await` it is suspended at
/// (or, for a task running right now, the last one it passed).
struct task_frame {
  std::string function;  ///< the coroutine's name as the compiler spells it (unqualified)
  std::string file;      ///< the source file of the `co_await`, as it was given to the compiler
  unsigned line = 0;     ///< its line
};

/// What a task was doing when runtime::tasks() looked.
enum class task_state : std::uint8_t {
  not_started,  ///< spawned, never resumed yet
  runnable,     ///< in a run queue, or suspended without a cancellable wait (a scope's join)
  running,      ///< the task that called tasks() / dump_tasks()
  waiting,      ///< suspended in an operation, a timer, a join or a primitive (see task_info)
};

/// A snapshot of one live (unfinished) task.
struct task_info {
  std::uint64_t id = 0;  ///< join_handle::id()
  /// set_task_name's name, or else the function of the task's outermost coroutine (empty for a
  /// task that has not started).
  std::string name;
  task_state state = task_state::runnable;  ///< what it was doing
  /// For a waiting task: what it waits for, e.g. "recv on fd 7 (peer 127.0.0.1:4000)", "sleep
  /// (due in 12 ms)", "join task 3", "mutex lock". Empty otherwise.
  std::string wait;
  /// How long it has waited so far, to the precision of the worker's polls (microseconds while
  /// the worker is busy, exact after a wake-up). Zero unless waiting.
  std::chrono::nanoseconds waited{0};
  int worker = -1;  ///< the worker whose ring or timers it waits on, or that runs it; else -1
  int fd = -1;      ///< the file descriptor an I/O or accept wait is on; else -1
  /// The chain of coroutines, innermost first like a thread's stack: [0] is where the task is
  /// suspended, the last one is the task's own (spawned) coroutine. Only coroutines of type
  /// corio::task are linked; another coroutine type in the chain ends it there.
  std::vector<task_frame> backtrace;
};

/// "not_started", "runnable", "running" or "waiting".
[[nodiscard]] std::string_view to_string(task_state s) noexcept;
/// A task's header line and its backtrace, one frame per line, indented:
/// `task 12 "serve" waiting 1.250 s on worker 1: recv on fd 7 (peer 127.0.0.1:4000)` then
/// `    #0 read_request at samples/http_server.cpp:88`.
[[nodiscard]] std::string to_string(const task_info& t);
/// Writes to_string(s).
std::ostream& operator<<(std::ostream& os, task_state s);
/// Writes to_string(t); fmt's `{}` formats the same way.
std::ostream& operator<<(std::ostream& os, const task_info& t);

/// Names the calling task in runtime::tasks() and dump_tasks() (replacing any earlier name).
/// Throws std::logic_error when not called from a task on a runtime worker.
void set_task_name(std::string_view name);

/// runtime::tasks() for the runtime whose worker calls it (from inside a task). Throws
/// std::logic_error off a worker, and std::runtime_error while another tasks() or dump_tasks()
/// of that runtime is in progress (a task cannot wait for it without stalling its worker).
[[nodiscard]] std::vector<task_info> current_tasks();
/// runtime::dump_tasks() for the runtime whose worker calls it; throws as current_tasks().
[[nodiscard]] std::string dump_current_tasks();

}  // namespace corio

/// @cond
template <>
struct fmt::formatter<corio::task_state> : fmt::formatter<std::string_view> {
  template <class Ctx>
  auto format(corio::task_state s, Ctx& ctx) const {
    return fmt::formatter<std::string_view>::format(corio::to_string(s), ctx);
  }
};
template <>
struct fmt::formatter<corio::task_info> : fmt::formatter<std::string_view> {
  template <class Ctx>
  auto format(const corio::task_info& t, Ctx& ctx) const {
    return fmt::formatter<std::string_view>::format(corio::to_string(t), ctx);
  }
};
/// @endcond
