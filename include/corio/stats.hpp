// corio::runtime_stats: counters of a runtime's workers, readable while it runs.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

namespace corio {

/// Counters of one worker since the runtime was created. Each is written only by its worker and
/// read without stopping it, so a snapshot taken while the runtime runs is approximate.
struct worker_stats {
  std::uint64_t tasks_polled = 0;  ///< coroutine resumptions run by this worker
  std::uint64_t steals = 0;        ///< successful steal operations from peers
  std::uint64_t tasks_stolen = 0;  ///< tasks those steals moved here
  std::uint64_t global_pops = 0;   ///< tasks taken from the global queue
  /// tasks moved to the global queue because the run queue was full
  std::uint64_t overflows = 0;
  std::uint64_t sqes_submitted = 0;  ///< submission queue entries prepared on this worker's ring
  /// completions reaped from it. More than sqes_submitted where one entry completes several
  /// times: a multishot accept or receive (a completion per connection or buffer, and a last one
  /// when it ends) and a zero-copy send (its result, then the kernel's notification).
  std::uint64_t cqes_reaped = 0;
  std::uint64_t enter_calls = 0;    ///< io_uring_enter system calls
  std::uint64_t parks = 0;          ///< times the worker went to sleep for lack of work
  std::uint64_t wakeups_sent = 0;   ///< wake-ups this worker sent to parked workers
  std::uint64_t timers_fired = 0;   ///< sleeps that expired on this worker
  std::uint64_t accept_pauses = 0;  ///< accepting paused for lack of fds or memory (EMFILE...)
  /// read_some_pooled receives armed with a heap buffer because this worker's read pool was dry
  /// (every buffer held): many mean runtime_options::read_pool_buffers is too small
  std::uint64_t pool_dry_reads = 0;
  /// buffers of this worker's read pool held by streams' queues or pooled_buffers when the
  /// snapshot was taken (0 before its first pooled read of the session)
  std::uint64_t pool_buffers_out = 0;
  std::uint64_t queue_depth = 0;    ///< run queue length when the snapshot was taken
  std::uint64_t ops_in_flight = 0;  ///< ring operations in flight when the snapshot was taken
  /// sleeps and operation deadlines armed on this worker's timer heap when the snapshot was taken
  std::uint64_t timers_armed = 0;
  /// A stall in progress, with poll_age_ns: the id of the task this worker was running when the
  /// snapshot was taken (0: none; the id join_handle::id() and runtime::tasks() show). A task
  /// that runs without suspending shows here while it runs, and in longest_poll_gap_ns after.
  std::uint64_t running_task = 0;
  /// How long ago, in nanoseconds, this worker last polled its ring, while it runs a task (0 when
  /// it runs none).
  std::uint64_t poll_age_ns = 0;
  /// The longest time, in nanoseconds, between two consecutive polls of this worker's ring
  /// (submitting, reaping completions, firing timers) while it had work: how long a task that
  /// runs without suspending, or a long run queue, kept I/O and timers waiting (starvation).
  /// Measured from the start of one poll to the start of the next; an interval with a park in
  /// it (the worker slept for lack of work) is not counted, nor the one that starts a session.
  std::uint64_t longest_poll_gap_ns = 0;

  /// Adds every counter of `o` to this one, except longest_poll_gap_ns, which becomes the larger
  /// of the two, and running_task and poll_age_ns, which become those of the older poll.
  worker_stats& operator+=(const worker_stats& o) noexcept;
};

/// One line of `name=value` for every counter: "polled=.. steals=.. ... longest_poll_gap_ns=..".
[[nodiscard]] std::string to_string(const worker_stats& s);
/// Writes to_string(s); fmt's `{}` formats the same way.
std::ostream& operator<<(std::ostream& os, const worker_stats& s);

/// A snapshot of runtime::stats().
struct runtime_stats {
  std::vector<worker_stats> workers;     ///< one per worker; index 0 is the block_on thread
  std::uint64_t tasks_spawned = 0;       ///< root tasks created (spawn, spawn_local, block_on)
  std::uint64_t tasks_live = 0;          ///< root tasks not yet finished or destroyed
  std::uint64_t global_queue_depth = 0;  ///< tasks waiting in the global queue
  std::uint64_t blocking_threads = 0;    ///< threads of the blocking pool right now
  std::uint64_t blocking_jobs = 0;       ///< spawn_blocking jobs run so far

  /// The sum over all workers (queue_depth and ops_in_flight summed too; longest_poll_gap_ns is
  /// the largest of the workers').
  [[nodiscard]] worker_stats total() const noexcept;
};

/// One line: "workers=N polled=.. steals=.. ... longest_poll_gap_ns=..", then the per-worker
/// queue depths.
[[nodiscard]] std::string to_string(const runtime_stats& s);
/// Writes to_string(s); fmt's `{}` formats the same way.
std::ostream& operator<<(std::ostream& os, const runtime_stats& s);

}  // namespace corio

/// @cond
template <>
struct fmt::formatter<corio::worker_stats> : fmt::formatter<std::string_view> {
  template <class FormatContext>
  auto format(const corio::worker_stats& s, FormatContext& ctx) const {
    return fmt::formatter<std::string_view>::format(corio::to_string(s), ctx);
  }
};

template <>
struct fmt::formatter<corio::runtime_stats> : fmt::formatter<std::string_view> {
  template <class FormatContext>
  auto format(const corio::runtime_stats& s, FormatContext& ctx) const {
    return fmt::formatter<std::string_view>::format(corio::to_string(s), ctx);
  }
};
/// @endcond
