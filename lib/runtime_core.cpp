// The session protocol of block_on, and shutdown.
//
// Start-up:
//  1. begin_main (on the caller's thread) refuses a nested or concurrent block_on, then creates
//     the main task's header, registers it and queues it on the global queue.
//  2. run_main makes the calling thread worker 0 and starts threads for workers 1..N-1. Each
//     worker creates its ring on its own thread (IORING_SETUP_SINGLE_ISSUER binds a ring to the
//     thread that creates it), then all meet at a start barrier. If any ring could not be
//     created, nobody runs a task and the session ends with that error (steps 5-7 still run).
//
// Shutdown, once the main task finished, normally or by exception:
//  3. complete_root(main) sets stop_ and wakes every parked worker. Running workers see stop_ at
//     their next loop iteration (a task that never suspends delays this; nothing can interrupt it).
//  4. Each worker drains its own ring (only its thread may submit to it): it cancels every op in
//     flight by its own user_data (its in-flight list, in batches; one IORING_ASYNC_CANCEL_ANY for
//     the internal SQEs) and reaps CQEs until no op is left, resuming nothing.
//     After this no kernel write into any frame can happen. The worker threads then exit.
//  5. Worker 0 joins them, drops blocking jobs not started yet and waits for the running ones
//     (their functions may use memory of the frames about to be destroyed).
//  6. Worker 0, no longer a worker, destroys every root task still registered, newest first:
//     destroying a frame runs its destructors and destroys the frames it owns (the tasks it was
//     awaiting). Frames scheduled in queues are among them; queues are then forgotten unread.
//     From the start of this step the global queue and the inboxes drop what is pushed: a
//     destructor may wake a waiter (a mutex guard unlocking), and its node must not be linked
//     behind a node whose frame is already gone; the woken task is pending and destroyed too.
//     Tasks spawned by those destructors are destroyed in the next round.
//  7. Rings and eventfds are closed, and block_on returns main's value or rethrows its exception.
#include "runtime_core.hpp"

#include "cancel.hpp"
#include "context.hpp"

#include <fmt/format.h>

#include <pthread.h>
#include <sched.h>
#include <signal.h>

#include <condition_variable>
#include <stdexcept>
#include <thread>

namespace corio::detail {

namespace {

std::size_t cpus_available() noexcept {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return static_cast<std::size_t>(n);
  }
  unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? n : 1;
}

runtime_options resolved(runtime_options o) {
  if (o.workers == 0) o.workers = cpus_available();
  if (o.workers > 4096) {
    throw std::invalid_argument(
        fmt::format("corio::runtime_options::workers = {} is more than 4096", o.workers));
  }
  if (o.ring_entries == 0 || o.ring_entries > 32768) {
    throw std::invalid_argument(fmt::format(
        "corio::runtime_options::ring_entries = {} is outside 1..32768", o.ring_entries));
  }
  if (o.max_blocking_threads == 0) {
    throw std::invalid_argument("corio::runtime_options::max_blocking_threads must be at least 1");
  }
  if (o.read_pool_buffers > 32768 || (o.read_pool_buffers & (o.read_pool_buffers - 1)) != 0) {
    throw std::invalid_argument(
        fmt::format("corio::runtime_options::read_pool_buffers = {} is not 0 or a power of two "
                    "up to 32768",
                    o.read_pool_buffers));
  }
  if (o.read_pool_buffer_size < 64 || o.read_pool_buffer_size > (std::size_t{1} << 30)) {
    throw std::invalid_argument(
        fmt::format("corio::runtime_options::read_pool_buffer_size = {} is outside 64..2^30",
                    o.read_pool_buffer_size));
  }
  return o;
}

std::string describe(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "an exception not derived from std::exception";
  }
}

// SIGPIPE is raised synchronously, on the thread whose write found no reader: a ring write to a
// pipe (IORING_OP_WRITE has no MSG_NOSIGNAL) would kill a process that kept the default
// disposition. Workers therefore run with SIGPIPE blocked; the write fails with EPIPE instead.
// The process's disposition is left alone. A SIGPIPE left pending on the block_on thread is
// consumed before its mask is restored, so it is not delivered later.
class sigpipe_blocked {
 public:
  sigpipe_blocked() noexcept {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &old_);
  }
  ~sigpipe_blocked() {
    if (sigismember(&old_, SIGPIPE)) return;  // it was blocked before: leave it as it was
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    timespec zero{0, 0};
    while (sigtimedwait(&set, nullptr, &zero) == SIGPIPE) {
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  sigpipe_blocked(const sigpipe_blocked&) = delete;
  sigpipe_blocked& operator=(const sigpipe_blocked&) = delete;

 private:
  sigset_t old_;
};

void set_thread_name(unsigned index) {
  char name[16];
  fmt::format_to_n(name, sizeof name - 1, "corio-w{}", index).out[0] = '\0';
  pthread_setname_np(pthread_self(), name);
}

}  // namespace

runtime_core::runtime_core(runtime_options options)
    : options_(resolved(std::move(options))),
      ring_config_{options_.ring_entries, options_.sqpoll,
                   static_cast<unsigned>(options_.sqpoll_idle.count())},
      features_(probe_kernel(ring_config_)),
      idle_(options_.workers),
      registry_(options_.workers),
      blocking_(*this, options_.max_blocking_threads, options_.blocking_keep_alive) {
  fork_guard::install();
  fork_epoch_ = fork_guard::epoch();
  workers_.reserve(options_.workers);
  for (std::size_t i = 0; i < options_.workers; ++i) {
    workers_.push_back(std::make_unique<worker>(*this, static_cast<unsigned>(i)));
  }
}

runtime_core::~runtime_core() {
  // Tasks spawned with runtime::spawn that no block_on ever ran.
  thread_context none(this, nullptr);
  inject_.discard();
  destroy_pending_roots();
}

task_header* runtime_core::begin_main(std::coroutine_handle<> frame, promise_base* promise,
                                      const result_cell_ops* cell_ops) {
  if (!frame) throw std::logic_error("corio::runtime::block_on: the task is empty (moved from?)");
  if (fork_epoch_ != fork_guard::epoch()) {
    frame.destroy();
    fork_guard::check(fork_epoch_, "corio::runtime::block_on");
  }
  // A worker of a runtime inherited through fork() is not nesting: that runtime is dead here.
  if (worker* w = current_worker();
      w != nullptr && w->runtime().fork_epoch() == fork_guard::epoch()) {
    frame.destroy();
    throw std::logic_error(
        "corio::runtime::block_on called from a worker thread (nested block_on); await the "
        "task or spawn it instead");
  }
  if (in_session_.exchange(true, std::memory_order_acq_rel)) {
    frame.destroy();
    throw std::logic_error("corio::runtime::block_on is already running on this runtime");
  }
  try {
    return spawn_root_on(*this, frame, promise, cell_ops);
  } catch (...) {
    in_session_.store(false, std::memory_order_release);
    throw;
  }
}

void runtime_core::run_main(task_header* main) {
  main_ = main;
  stop_.store(false, std::memory_order_seq_cst);
  idle_.reset();

  // Step 2: open every ring on its own thread, then meet at the start barrier.
  std::mutex start_mutex;
  std::condition_variable start_cv;
  std::size_t arrived = 0;
  std::exception_ptr startup_error;
  auto arrive = [&](std::exception_ptr error) {
    std::unique_lock lock(start_mutex);
    if (error && !startup_error) startup_error = error;
    if (++arrived == workers_.size()) start_cv.notify_all();
    start_cv.wait(lock, [&] { return arrived == workers_.size(); });
    return startup_error == nullptr;
  };
  auto body = [&](worker& w) {
    sigpipe_blocked no_sigpipe;
    bool opened = false;
    std::exception_ptr error;
    try {
      w.open();
      opened = true;
    } catch (...) {
      error = std::current_exception();
    }
    if (arrive(error)) {
      w.run();  // steps 3-4
    } else if (opened) {
      request_stop();
      w.run();  // stop_ is set: only drains
    }
  };

  std::vector<std::thread> threads;
  threads.reserve(workers_.size() - 1);
  {
    thread_context ctx(this, workers_[0].get());
    try {
      for (std::size_t i = 1; i < workers_.size(); ++i) {
        threads.emplace_back([this, i, &body] {
          thread_context tctx(this, workers_[i].get());
          set_thread_name(static_cast<unsigned>(i));
          body(*workers_[i]);
        });
      }
    } catch (...) {
      // Could not start a thread: let the started ones pass the barrier and stop.
      std::exception_ptr error = std::current_exception();
      {
        std::lock_guard lock(start_mutex);
        if (!startup_error) startup_error = error;
        arrived += workers_.size() - 1 - threads.size();
      }
    }
    body(*workers_[0]);
    for (auto& t : threads) t.join();
  }

  // Step 5.
  blocking_.cancel_queued();
  blocking_.wait_idle();
  // Steps 6-7, with this thread no longer acting as a worker.
  {
    thread_context none(this, nullptr);
    inject_.discard();
    for (auto& w : workers_) w->discard_inbox();
    destroy_pending_roots();
    // The stop refused every claim since; wait out the foreign wakers that claimed before it.
    while (foreign_wakers_.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
    for (auto& w : workers_) w->close();
    inject_.accept_again();  // runtime::spawn between sessions queues for the next one
  }
  main_ = nullptr;
  in_session_.store(false, std::memory_order_release);
  if (startup_error) std::rethrow_exception(startup_error);
}

void runtime_core::request_stop() {
  stop_.store(true, std::memory_order_seq_cst);
  worker* self = current_worker();
  for (worker* w : idle_.stop()) w->wake(self);
}

namespace {

// Destroying a pending task destroys the chain of frames it awaits recursively, one native stack
// frame per level: a chain 300,000 deep overflows an 8 MiB stack. The destruction therefore runs
// on a helper thread whose stack reserves 256 MiB of address space (pages are committed only when
// touched), enough for millions of levels; if that thread cannot be created, on this thread.
constexpr std::size_t destroy_stack_size = std::size_t{256} << 20;

template <class F>
void run_on_big_stack(F& f) noexcept {
  pthread_attr_t attr;
  pthread_t thread;
  bool started = false;
  if (pthread_attr_init(&attr) == 0) {
    if (pthread_attr_setstacksize(&attr, destroy_stack_size) == 0) {
      started = pthread_create(
                    &thread, &attr,
                    [](void* p) -> void* {
                      (*static_cast<F*>(p))();
                      return nullptr;
                    },
                    &f) == 0;
    }
    pthread_attr_destroy(&attr);
  }
  if (started) {
    pthread_join(thread, nullptr);
  } else {
    f();
  }
}

}  // namespace

void runtime_core::destroy_pending_roots() noexcept {
  if (registry_.size() == 0) return;
  auto destroy_all = [this] {
    thread_context ctx(this, nullptr);  // spawns from destructors land here, destroyed next round
    destroy_pending_roots_here();
  };
  run_on_big_stack(destroy_all);
}

void runtime_core::destroy_pending_roots_here() noexcept {
  for (;;) {
    std::vector<task_header*> pending = registry_.snapshot();
    if (pending.empty()) return;
    for (task_header* t : pending) {
      registry_.remove(t);
      t->frame().destroy();  // runs the destructors of the whole chain of frames
      std::uint32_t prev = t->state.fetch_or(task_header::complete | task_header::destroyed,
                                             std::memory_order_acq_rel);
      // A joiner (prev & join_waiting) is itself pending and is destroyed too: not scheduled.
      t->destroy_if_unreferenced(prev | task_header::complete | task_header::destroyed);
    }
  }
}

void runtime_core::schedule_from(worker* caller, sched_node* n) {
  if (caller != nullptr && &caller->runtime() == this) {
    caller->schedule_local(n);
    return;
  }
  worker* pin = n->task ? n->task->pinned : nullptr;
  if (pin != nullptr) {
    pin->push_inbox(n);
    notify_worker(*pin, nullptr);
    return;
  }
  inject_.push(n);
  notify_one(nullptr);
}

namespace {

// A claim (idle.hpp) is made under the idle set's mutex, but the wake-up it owes is written
// after: a worker parked with a deadline may wake by itself meanwhile, finish the session and
// close its eventfd, whose number the kernel may hand to someone else. This runtime's own
// workers are joined before that; a foreign thread is counted here for the duration. The count
// is raised (seq_cst) before the claim, and the session's end reads it (seq_cst) after
// idle_set::stop(): a waker it did not see claims after the stop, which refuses every claim.
class foreign_wake_guard {
 public:
  foreign_wake_guard(std::atomic<int>& count, bool foreign) noexcept
      : count_(foreign ? &count : nullptr) {
    if (count_ != nullptr) count_->fetch_add(1, std::memory_order_seq_cst);
  }
  ~foreign_wake_guard() {
    if (count_ != nullptr) count_->fetch_sub(1, std::memory_order_release);
  }
  foreign_wake_guard(const foreign_wake_guard&) = delete;
  foreign_wake_guard& operator=(const foreign_wake_guard&) = delete;

 private:
  std::atomic<int>* count_;
};

}  // namespace

void runtime_core::notify_one(worker* sender) {
  seq_cst_fence();  // P3: the producer's half of the Dekker pattern
  if (idle_.num_searching() != 0 || idle_.num_parked() == 0) return;
  foreign_wake_guard guard(foreign_wakers_, sender == nullptr || &sender->runtime() != this);
  if (worker* v = idle_.claim_any()) v->wake(sender);
}

void runtime_core::notify_worker(worker& target, worker* sender) {
  foreign_wake_guard guard(foreign_wakers_, sender == nullptr || &sender->runtime() != this);
  if (idle_.claim(target)) target.wake(sender);
}

void runtime_core::start_root(task_header* t, worker* spawner) {
  registry_.add(t, spawner ? spawner->index() : workers_.size());
  if (spawner != nullptr) {
    spawner->note_spawn();
    spawner->schedule_spawned(&t->start);
    if (t->pinned == nullptr) spawner->request_notify();  // new work: worth a peer's while
  } else {
    foreign_spawned_.fetch_add(1, std::memory_order_relaxed);
    schedule(&t->start);
  }
}

void runtime_core::complete_root(task_header* t, worker& w) noexcept {
  t->release_frame();  // before COMPLETE: the handle may take the result (and free t) right after
  registry_.remove(t);
  if (t == main_) request_stop();
  std::uint32_t prev = t->state.fetch_or(task_header::complete, std::memory_order_acq_rel);
  // Past this point `t` belongs to its handle, unless there is none. Reading `joiner` is safe:
  // JOIN_WAITING means the handle's owner is suspended in the join and cannot free `t`.
  if (prev & task_header::join_waiting) {
    join_waiter* joiner = t->joiner;
    // This RMW claimed the wake (cancel_join gives up once COMPLETE is set), so on the joiner's
    // own worker its wait is cleared without the cancel lock (cancel.cpp step 4).
    end_wait_enrolled(&w, joiner->node.task, joiner);
    // A joiner from another runtime (it awaits a handle that runtime::spawn gave it) resumes on
    // a worker of its own runtime, not on this one's. schedule_from's first case, inline (as in
    // schedule_target, wait_list.cpp): through schedule_from a spawn + join costs 22
    // instructions more.
    runtime_core* home = joiner->node.task != nullptr ? joiner->node.task->runtime : this;
    if (home == this) {
      w.schedule_local(&joiner->node);
    } else {
      home->schedule_from(&w, &joiner->node);
    }
  }
  if (!(prev & task_header::handle) && t->has_unobserved_exception()) {
    report_unhandled(t->exception, t->id);
  }
  t->destroy_if_unreferenced(prev | task_header::complete);
}

void runtime_core::report_unhandled(std::exception_ptr e, std::uint64_t id) noexcept {
  if (options_.on_unhandled_exception) {
    options_.on_unhandled_exception(e, id);  // documented not to throw: noexcept terminates
    return;
  }
  try {
    fmt::print(stderr, "corio: task {} ended with an unhandled exception: {}\n", id, describe(e));
  } catch (...) {
    // stderr is unusable; nothing else to report to
  }
}

runtime_stats runtime_core::stats() const {
  runtime_stats s;
  s.workers.reserve(workers_.size());
  s.tasks_spawned = foreign_spawned_.load(std::memory_order_relaxed);
  for (const auto& w : workers_) {
    s.workers.push_back(w->snapshot());
    s.tasks_spawned += w->spawned();
  }
  s.tasks_live = registry_.size();
  s.global_queue_depth = inject_.approx_len();
  s.blocking_threads = blocking_.threads();
  s.blocking_jobs = blocking_.jobs_run();
  return s;
}

}  // namespace corio::detail
