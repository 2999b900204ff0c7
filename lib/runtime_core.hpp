// runtime_core: what a corio::runtime is made of, and the session (block_on) protocol.
#pragma once

#include "blocking_pool.hpp"
#include "context.hpp"
#include "fork_guard.hpp"
#include "idle.hpp"
#include "inject_queue.hpp"
#include "registry.hpp"
#include "ring.hpp"
#include "task_header.hpp"
#include "worker.hpp"

#include <corio/runtime.hpp>

#include <atomic>
#include <cstddef>
#include <exception>
#include <memory>
#include <mutex>
#include <vector>

namespace corio::detail {

class runtime_core {
 public:
  explicit runtime_core(runtime_options options);
  ~runtime_core();
  runtime_core(const runtime_core&) = delete;
  runtime_core& operator=(const runtime_core&) = delete;

  /// block_on, step 1: refuses a nested or concurrent session (destroying `frame`), then creates
  /// and queues the main task.
  task_header* begin_main(std::coroutine_handle<> frame, promise_base* promise,
                          const result_cell_ops* cell_ops);
  /// block_on's body: runs the workers until `main` finished, then shuts down.
  void run_main(task_header* main);

  // ---- scheduling, any thread ----
  /// Makes `n` runnable: on the calling worker if there is one, else through the global queue
  /// (or the inbox of the worker its task is pinned to).
  void schedule(sched_node* n) { schedule_from(current_worker(), n); }
  /// schedule() for a caller that has already looked up current_worker() (`caller`).
  void schedule_from(worker* caller, sched_node* n);
  /// P3 of idle.hpp: wakes a parked worker to search if nobody searches.
  void notify_one(worker* sender);
  /// P4 of idle.hpp: wakes `target` if it is parked.
  void notify_worker(worker& target, worker* sender);
  bool stop_requested() const noexcept { return stop_.load(std::memory_order_seq_cst); }
  /// fork_guard::epoch() when this runtime was created: a different current value means this is
  /// a forked child, which must not use the runtime (fork_guard.hpp).
  unsigned fork_epoch() const noexcept { return fork_epoch_; }

  // ---- root tasks ----
  /// Registers `t` and queues its first resumption; `spawner` is the calling worker or nullptr.
  void start_root(task_header* t, worker* spawner);
  /// Runs on the worker where `t`'s frame reached final_suspend, after it suspended.
  void complete_root(task_header* t, worker& w) noexcept;
  void report_unhandled(std::exception_ptr e, std::uint64_t id) noexcept;

  std::size_t worker_count() const noexcept { return workers_.size(); }
  worker& worker_at(std::size_t i) noexcept { return *workers_[i]; }
  inject_queue& inject() noexcept { return inject_; }
  idle_set& idle() noexcept { return idle_; }
  blocking_pool& blocking() noexcept { return blocking_; }
  const kernel_features& features() const noexcept { return features_; }
  /// Whether primitives made on its worker bias their spin_lock to it (wait_list.hpp): one
  /// worker, and a kernel with membarrier, for which probe_kernel registered the process.
  bool home_biased_locks() const noexcept { return workers_.size() == 1 && features_.membarrier; }
  const ring_config& ring_settings() const noexcept { return ring_config_; }
  const runtime_options& options() const noexcept { return options_; }
  runtime_stats stats() const;
  /// runtime::tasks() (task_dump.cpp).
  std::vector<task_info> inspect_tasks();

 private:
  void request_stop();
  void destroy_pending_roots() noexcept;
  void destroy_pending_roots_here() noexcept;

  runtime_options options_;
  ring_config ring_config_;
  kernel_features features_;
  std::vector<std::unique_ptr<worker>> workers_;
  inject_queue inject_;
  idle_set idle_;
  registry registry_;
  std::atomic<bool> stop_{false};
  unsigned fork_epoch_ = 0;
  std::atomic<bool> in_session_{false};
  task_header* main_ = nullptr;  // written before the session's threads start
  std::atomic<std::uint64_t> foreign_spawned_{0};
  // Threads that are not this runtime's workers (plain threads, another runtime's workers) in
  // notify_one or notify_worker: the session's end waits for them before closing the workers'
  // eventfds, which their wake() may still write to (foreign_wake_guard in runtime_core.cpp).
  std::atomic<int> foreign_wakers_{0};
  std::mutex inspect_mutex_;  // one inspect_tasks() at a time: two would wait for each other
  blocking_pool blocking_;    // last: its threads may call into the members above until joined
};

}  // namespace corio::detail
