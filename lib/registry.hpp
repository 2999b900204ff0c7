// registry: every root task that has not finished, so that shutdown can find and destroy the
// frames of tasks still pending wherever they wait (an I/O operation, a timer, a join, a queue).
//
// Sharded by the worker that spawned the task (plus one shard for other threads) so that spawns
// on different workers do not contend; a task finishing on another worker locks its spawner's
// shard once. A shard's lock is a spin lock: add and remove hold it for a few stores, and a
// spawn + join took a pthread mutex lock and unlock twice (about 100 of its 1,250 instructions).
// snapshot() and size() hold it longer (a walk of the shard), but they serve shutdown and
// diagnostics, and a waiter spins briefly and then yields (spin_lock::lock_slow).
//
// With one worker, that worker's shard takes no lock at all (`owner_only`): its tasks are added
// by the worker (a spawn from a task) and removed by the worker (complete_root) or by shutdown,
// after the worker left its loop. Every other access is ordered after the worker's by something
// else: a snapshot in a session stops the world first (task_dump.cpp: the worker arrives under a
// mutex and writes nothing until released), and one outside a session or at shutdown follows
// the session's end (the worker thread's join, or the same thread). Tasks spawned from other
// threads go to the last shard, which always locks. Two locked instructions fewer per spawn is
// about 12 ns of a 125 ns spawn + join.
#pragma once

#include "task_header.hpp"

#include <corio/detail/wait_list.hpp>

#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

namespace corio::detail {

class registry {
 public:
  /// `workers` shards for the workers' spawns, and one more for other threads.
  explicit registry(std::size_t workers);

  /// `shard`: the spawning worker's index, or `workers` for any other thread.
  void add(task_header* t, std::size_t shard);
  void remove(task_header* t) noexcept;
  /// Every registered task, newest (highest id) first: children spawned by a task are destroyed
  /// before the task that spawned them.
  std::vector<task_header*> snapshot() const;
  std::size_t size() const noexcept;

 private:
  struct alignas(64) shard {
    mutable spin_lock lock;
    bool owner_only = false;  // see above: one worker's shard in a one-worker runtime
    task_header* head = nullptr;
    std::size_t count = 0;
  };
  std::size_t shard_count_;
  std::unique_ptr<shard[]> shards_;
};

}  // namespace corio::detail
