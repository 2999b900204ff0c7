// blocking_pool: the elastic thread pool behind spawn_blocking.
//
// Threads start on demand, up to a bound, when a job arrives and no thread is idle; a thread that
// finds no job for `keep_alive` exits. Jobs beyond the bound wait in a FIFO. A job is intrusive
// (it lives in the awaiting frame), so queueing allocates nothing.
#pragma once

#include "intrusive_fifo.hpp"

#include <corio/blocking.hpp>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <thread>

namespace corio::detail {

class runtime_core;

class blocking_pool {
 public:
  blocking_pool(runtime_core& rt, std::size_t max_threads, std::chrono::milliseconds keep_alive);
  ~blocking_pool();  // wakes and joins every thread; jobs still queued are dropped
  blocking_pool(const blocking_pool&) = delete;
  blocking_pool& operator=(const blocking_pool&) = delete;

  /// Queues `job`; starts a thread if none is idle and the bound allows. Throws std::system_error
  /// when no thread exists and none can be started (the job is then not queued).
  void submit(blocking_job* job);
  /// Drops every job not started yet (shutdown: their frames are about to be destroyed).
  void cancel_queued();
  /// Takes `job` out of the queue if it has not started; returns whether it did.
  bool try_remove(blocking_job* job);
  /// Waits until no job is running.
  void wait_idle();

  std::size_t threads() const;
  std::uint64_t jobs_run() const;

 private:
  void thread_main(std::list<std::thread>::iterator self);
  void join_exited();

  runtime_core& rt_;
  const std::size_t max_threads_;
  const std::chrono::milliseconds keep_alive_;

  mutable std::mutex mutex_;
  std::condition_variable work_cv_;                              // a job arrived, or shutdown
  std::condition_variable idle_cv_;                              // a job finished
  intrusive_fifo<blocking_job, &blocking_job::next_job> queue_;  // guarded by mutex_
  std::size_t idle_threads_ = 0;
  std::size_t running_jobs_ = 0;
  std::uint64_t jobs_run_ = 0;
  bool shutdown_ = false;
  std::list<std::thread> threads_;  // live threads
  std::list<std::thread> exited_;   // threads that returned, to be joined
  const unsigned epoch_;            // fork_guard::epoch() at construction
};

}  // namespace corio::detail
