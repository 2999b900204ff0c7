#include "blocking_pool.hpp"

#include "context.hpp"
#include "fork_guard.hpp"

#include <pthread.h>
#include <signal.h>

#include <new>

namespace corio::detail {

blocking_pool::blocking_pool(runtime_core& rt, std::size_t max_threads,
                             std::chrono::milliseconds keep_alive)
    : rt_(rt), max_threads_(max_threads), keep_alive_(keep_alive), epoch_(fork_guard::epoch()) {}

blocking_pool::~blocking_pool() {
  if (epoch_ != fork_guard::epoch()) {
    // A forked child destroying an inherited runtime: the threads are the parent's (none of them
    // exists here, so none can be joined) and one of them may have held mutex_ at the fork. The
    // handles are parked in static storage, never joined nor destroyed, and reachable for LSan.
    alignas(std::list<std::thread>) static unsigned char parked[2][sizeof(std::list<std::thread>)];
    new (parked[0]) std::list<std::thread>(std::move(threads_));
    new (parked[1]) std::list<std::thread>(std::move(exited_));
    return;
  }
  std::list<std::thread> all;
  {
    std::lock_guard lock(mutex_);
    shutdown_ = true;
    queue_.clear();  // dropped: their frames are gone with the runtime's tasks
    work_cv_.notify_all();
  }
  // Threads move themselves from threads_ to exited_ as they leave; wait for all of them.
  for (;;) {
    std::list<std::thread> done;
    bool live;
    {
      std::unique_lock lock(mutex_);
      idle_cv_.wait(lock, [&] { return !exited_.empty() || threads_.empty(); });
      done.splice(done.end(), exited_);
      live = !threads_.empty();
    }
    for (auto& t : done) t.join();
    if (!live) break;
  }
}

void blocking_pool::submit(blocking_job* job) {
  join_exited();
  std::lock_guard lock(mutex_);
  queue_.push(job);
  if (idle_threads_ >= queue_.size()) {
    work_cv_.notify_one();
    return;
  }
  if (threads_.size() >= max_threads_) return;  // waits for a busy thread
  try {
    auto it = threads_.emplace(threads_.end());
    try {
      *it = std::thread([this, it] { thread_main(it); });
    } catch (...) {
      threads_.erase(it);
      throw;
    }
  } catch (...) {
    if (!threads_.empty()) return;  // a live thread will get to it
    // No thread at all can run the job: take it back and report. It was the only queued job,
    // since threads exit only when the queue is empty.
    queue_.clear();
    throw;
  }
}

void blocking_pool::thread_main(std::list<std::thread>::iterator self) {
  thread_context ctx(&rt_, nullptr);  // spawn() works from blocking code
  sigset_t no_sigpipe;  // as on the workers (runtime_core.cpp); a pending one dies with the thread
  sigemptyset(&no_sigpipe);
  sigaddset(&no_sigpipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &no_sigpipe, nullptr);
  pthread_setname_np(pthread_self(), "corio-blocking");
  std::unique_lock lock(mutex_);
  for (;;) {
    if (blocking_job* job = queue_.pop()) {
      ++running_jobs_;
      lock.unlock();
      job->execute(job);  // ends with complete_blocking: `job` may be gone afterwards
      if (fork_guard::epoch() != epoch_) [[unlikely]] {
        fork_guard::child_resumed_parent_runtime("blocking-pool thread");  // the job forked
      }
      lock.lock();
      --running_jobs_;
      ++jobs_run_;
      idle_cv_.notify_all();
      continue;
    }
    if (shutdown_) break;
    ++idle_threads_;
    bool woken = work_cv_.wait_for(lock, keep_alive_, [&] { return !queue_.empty() || shutdown_; });
    --idle_threads_;
    if (!woken) break;  // idle for keep_alive: exit
  }
  exited_.splice(exited_.end(), threads_, self);
  idle_cv_.notify_all();
}

void blocking_pool::join_exited() {
  std::list<std::thread> done;
  {
    std::lock_guard lock(mutex_);
    done.splice(done.end(), exited_);
  }
  for (auto& t : done) t.join();
}

void blocking_pool::cancel_queued() {
  std::lock_guard lock(mutex_);
  queue_.clear();
}

bool blocking_pool::try_remove(blocking_job* job) {
  std::lock_guard lock(mutex_);
  return queue_.remove(job);
}

void blocking_pool::wait_idle() {
  std::unique_lock lock(mutex_);
  idle_cv_.wait(lock, [&] { return running_jobs_ == 0; });
}

std::size_t blocking_pool::threads() const {
  std::lock_guard lock(mutex_);
  return threads_.size();
}

std::uint64_t blocking_pool::jobs_run() const {
  std::lock_guard lock(mutex_);
  return jobs_run_;
}

}  // namespace corio::detail
