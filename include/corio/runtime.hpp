// corio::runtime: worker threads, each with one io_uring ring, sharing work by stealing.
#pragma once

#include <corio/detail/root.hpp>
#include <corio/features.hpp>
#include <corio/inspect.hpp>
#include <corio/join_handle.hpp>
#include <corio/stats.hpp>
#include <corio/task.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace corio {

/// How a runtime is built. An aggregate: `runtime_options{.workers = 4}`.
struct runtime_options {
  /// Worker threads, the thread that calls block_on included (1 = single-threaded). 0 means one per
  /// CPU this process may run on (its affinity mask).
  std::size_t workers = 0;
  /// Submission queue entries of each worker's ring (the kernel rounds up to a power of two); the
  /// completion queue gets four times as many.
  unsigned ring_entries = 256;
  /// Kernel-side submission polling (IORING_SETUP_SQPOLL): a kernel thread per ring picks up
  /// submissions, at the cost of a spinning core. Excludes IORING_SETUP_DEFER_TASKRUN.
  bool sqpoll = false;
  /// Idle time after which an SQPOLL kernel thread sleeps.
  std::chrono::milliseconds sqpoll_idle{50};
  /// Buffers in each worker's read pool (read_some_pooled): a power of two up to 32768, or 0 for
  /// none (every pooled read then uses a heap buffer). A worker maps its pool at the first
  /// pooled read of a session: read_pool_buffers * read_pool_buffer_size bytes.
  unsigned read_pool_buffers = 1024;
  /// The size of each of those buffers: the most one pooled read returns (64 .. 2^30). Larger
  /// than the messages expected: a receive that fills its buffer makes the kernel try again at
  /// once (a wasted system-call's worth of work when nothing more is there).
  std::size_t read_pool_buffer_size = 8192;
  /// Upper bound on the threads of the spawn_blocking pool.
  std::size_t max_blocking_threads = 512;
  /// A blocking-pool thread exits after this long without a job.
  std::chrono::milliseconds blocking_keep_alive{10'000};
  /// Receives the exception of a task nobody joined (detached, or its handle dropped unawaited),
  /// with the task's id: on the worker that finished the task, or, when the last handle of a task
  /// that had already finished is dropped, on the thread that drops it. Empty: one line on
  /// stderr. It must not throw.
  std::function<void(std::exception_ptr, std::uint64_t task_id)> on_unhandled_exception{};
};

namespace detail {
runtime_core& core_of(runtime& rt) noexcept;
task_header* begin_main(runtime_core& rt, std::coroutine_handle<> frame, promise_base* promise,
                        const result_cell_ops* cell_ops);
void run_main(runtime_core& rt, task_header* main);
}  // namespace detail

/// A set of worker threads that run tasks. Each worker owns one io_uring ring, a bounded run
/// queue that idle peers steal from, and the timers of the tasks that sleep on it.
///
/// The workers exist while block_on runs: block_on starts them (its calling thread becomes worker
/// 0), runs the main task and everything it spawns, and once the main task finished, normally or
/// by exception, destroys every task still pending (their destructors run, after every ring
/// operation of theirs was cancelled and its completion reaped), joins the threads and returns
/// main's value or rethrows its exception. block_on may be called again afterwards. Constructing
/// a runtime checks that io_uring is usable and throws std::system_error naming the cause if not.
class runtime {
 public:
  /// Resolves `options` (std::invalid_argument for an out-of-range value), probes the kernel's
  /// io_uring (std::system_error naming the cause if it is unusable) and prepares the workers;
  /// starts no thread and sets up no worker ring (block_on does).
  explicit runtime(runtime_options options = {});
  /// Destroys the tasks that runtime::spawn queued and no block_on ran. Must not be called while
  /// block_on runs.
  ~runtime();
  runtime(const runtime&) = delete;
  runtime& operator=(const runtime&) = delete;

  /// Runs `main` to completion on the workers, shuts down as described above, and returns its
  /// value or rethrows its exception. Throws std::logic_error when called from a worker of any
  /// runtime (nested block_on) or with an empty task, and std::system_error when a worker cannot
  /// set up its ring.
  template <class T>
  T block_on(task<T> main) {
    auto frame = main.release();
    join_handle<T> h(detail::begin_main(*core_, frame, frame ? &frame.promise() : nullptr,
                                        detail::task_promise<T>::cell_ops()),
                     frame);
    detail::run_main(*core_, h.task_);
    return h.take();
  }

  /// Spawns `t` from any thread: it runs once block_on runs (or is running). Throws
  /// std::logic_error for an empty task.
  template <class T>
  join_handle<T> spawn(task<T> t) {
    auto frame = t.release();
    return join_handle<T>(detail::spawn_root_on(*core_, frame, frame ? &frame.promise() : nullptr,
                                                detail::task_promise<T>::cell_ops()),
                          frame);
  }

  /// Counters of every worker; callable from any thread at any time.
  [[nodiscard]] runtime_stats stats() const;
  /// Every live task (spawned and not finished), oldest first: its state, what it waits for and
  /// since when, and its async backtrace (the chain of awaiting coroutines). Callable from any
  /// thread, and from a task (then the caller shows as `running`). To read the tasks safely, it
  /// pauses every other worker between two resumptions until the snapshot is taken -- a worker
  /// busy in one long resumption delays it. While nobody calls it, what it reads costs a few
  /// stores per co_await and 32 bytes per coroutine frame (docs/design.md). While the
  /// runtime shuts down (its main task finished) it returns no task. From a task it throws
  /// std::runtime_error if another snapshot of this runtime is in progress; from other threads
  /// it waits for that one.
  [[nodiscard]] std::vector<task_info> tasks() const;
  /// tasks(), formatted: one header line per task and one line per frame (to_string(task_info)),
  /// after a line with the runtime's stats.
  [[nodiscard]] std::string dump_tasks() const;
  /// What the kernel's io_uring offered when this runtime was constructed (probed once then);
  /// callable from any thread, valid as long as the runtime.
  [[nodiscard]] const kernel_features& features() const noexcept;
  /// The number of workers block_on runs (options().workers resolved).
  [[nodiscard]] std::size_t worker_count() const noexcept;
  /// The options as resolved by the constructor (workers 0 replaced by the worker count).
  [[nodiscard]] const runtime_options& options() const noexcept;

 private:
  friend detail::runtime_core& detail::core_of(runtime&) noexcept;
  std::unique_ptr<detail::runtime_core> core_;
};

/// `corio::run(main_task(), {.workers = 2})`: builds a runtime and block_on's `main` on it.
template <class T>
T run(task<T> main, runtime_options options = {}) {
  runtime rt(std::move(options));
  return rt.block_on(std::move(main));
}

}  // namespace corio
