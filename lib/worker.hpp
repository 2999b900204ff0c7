// worker: one scheduler thread with its ring, run queue, pinned tasks, inbox and timers.
// The loop and its correctness argument are described at the top of worker.cpp.
#pragma once

#include "intrusive_fifo.hpp"
#include "ring.hpp"
#include "run_queue.hpp"
#include "task_header.hpp"
#include "timer_queue.hpp"
#include "tsan.hpp"

#include <corio/detail/io_op.hpp>
#include <corio/detail/sched_node.hpp>
#include <corio/stats.hpp>
#include <corio/time.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>

namespace corio::detail {

class buffer_pool;
class runtime_core;
class task_header;

/// user_data values that are not io_op pointers (op pointers are at least 8-aligned and far
/// above these).
enum : std::uint64_t {
  ud_wake = 1,             // a peer's IORING_OP_MSG_RING: wake up, nothing else
  ud_msg_sent = 2,         // completion of a MSG_RING this worker sent
  ud_eventfd = 3,          // the read on this worker's eventfd completed (a wake from a non-worker)
  ud_cancel_all = 4,       // the shutdown IORING_ASYNC_CANCEL_ANY
  ud_cancel_one = 5,       // an IORING_OP_ASYNC_CANCEL of one op (cancel.cpp)
  ud_fire_and_forget = 6,  // an internal SQE whose result nobody needs (fd_owner.cpp)
  ud_last = ud_fire_and_forget,
};

/// Counters written only by their worker (relaxed loads and stores, no locked instructions) and
/// read by runtime::stats() from any thread.
struct worker_counters {
  std::atomic<std::uint64_t> tasks_polled{0}, steals{0}, tasks_stolen{0}, global_pops{0},
      overflows{0}, sqes_submitted{0}, cqes_reaped{0}, enter_calls{0}, parks{0}, wakeups_sent{0},
      timers_fired{0}, spawned{0}, accept_pauses{0}, pool_dry_reads{0};
  /// Buffers of the read pool that are out (buffer_pool::note_level), for stats() from any thread.
  std::atomic<std::uint64_t> pool_buffers_out{0};
  /// The longest time between the starts of two consecutive poll() calls without a park between
  /// them (worker_stats::longest_poll_gap_ns).
  std::atomic<std::uint64_t> longest_poll_gap_ns{0};
  /// When the last poll() started (steady clock); 0 after a park or at a session's start, when
  /// the next poll() starts a new interval instead of ending one. Written by the owner only;
  /// atomic (relaxed) because stats() reads it from any thread for poll_age_ns.
  std::atomic<std::int64_t> last_poll_ns{0};
  static void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) noexcept {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
};

class worker {
 public:
  static constexpr std::uint32_t queue_capacity = 256;
  /// Every this many resumptions the worker looks at the global queue first (fairness).
  static constexpr std::uint32_t global_queue_interval = 31;
  /// Every this many resumptions the worker submits SQEs and reaps CQEs even if it has work.
  static constexpr std::uint32_t poll_interval = 61;
  /// Resumptions in a row from the LIFO slot before its task goes to the back of the queue.
  static constexpr std::uint32_t max_lifo_runs = 4;

  worker(runtime_core& rt, unsigned index);
  ~worker();
  worker(const worker&) = delete;
  worker& operator=(const worker&) = delete;

  unsigned index() const noexcept { return index_; }
  /// The runtime has one worker, this one: nothing is stolen from it, and every cancellation of
  /// its tasks is processed on its thread (cancel.cpp, step 5).
  bool alone() const noexcept { return !has_peers_; }
  runtime_core& runtime() const noexcept { return rt_; }

  // ---- session, on the worker's own thread ----
  /// Creates the ring and the eventfd; throws std::system_error.
  void open();
  /// The scheduler loop; returns when the runtime stops, after draining the ring.
  void run();
  /// After every worker stopped (any thread): forgets queued nodes and closes the ring.
  void close() noexcept;

  // ---- owner-only, used by awaiters through the out-of-line functions in ops.cpp ----
  task_header* current_task() const noexcept { return current_task_; }
  /// The steady clock when this worker last polled its ring or woke from a park: how long a task
  /// has waited, to a poll's precision, without a clock read per wait.
  std::int64_t clock_hint() const noexcept { return clock_hint_ns_; }
  bool draining() const noexcept { return draining_; }
  /// Trampoline mode (task.hpp): resume `h` right after the current resumption returned.
  void resume_next(std::coroutine_handle<> h) noexcept { trampoline_ = h; }
  /// Runs `a` after the current resumption returned (see deferred_action).
  void defer(deferred_action* a) noexcept;
  /// Schedules `n` after the current resumption returned, behind every ready task (yield).
  void defer_yield(sched_node* n) noexcept { deferred_yields_.push(n); }
  /// Makes `n` runnable from this worker: the LIFO slot (the first wake of a resumption), this
  /// worker's queue, its pinned list, or the inbox of the worker `n`'s task is pinned to.
  void schedule_local(sched_node* n) {
    worker* pin = n->task ? n->task->pinned : nullptr;
    if (pin != nullptr) [[unlikely]] {
      schedule_pinned(n, pin);
    } else if (lifo_ok_ && lifo_ == nullptr) {
      lifo_ = n;
    } else {
      push_queue(n);
    }
  }
  /// schedule_local for a task just spawned: never the LIFO slot (spawned tasks start in order).
  void schedule_spawned(sched_node* n);
  /// An SQE on this worker's ring, never nullptr: submits the queued SQEs to make room.
  io_uring_sqe* get_sqe() {
    if (io_uring_sqe* sqe = ring_->try_get_sqe()) [[likely]]
      return sqe;
    return get_sqe_after_submit();
  }
  /// Records an SQE carrying `op`: one more op until its final CQE.
  void op_submitted(io_op* op) noexcept {
    tsan::release(op);  // pairs: acquire in reap
    link_in_flight(op);
    inc_in_flight();
    worker_counters::bump(counters_.sqes_submitted);
    ring_->after_prepare();  // fault injection's `eager`; empty otherwise
  }
  /// Records an internal SQE (a tag as user_data) that will produce one CQE.
  void note_internal_sqe() noexcept {
    inc_in_flight();
    worker_counters::bump(counters_.sqes_submitted);
  }
  /// Makes sure the next `n` get_sqe calls find room without submitting in between (linked SQEs
  /// must reach the kernel in one batch).
  void reserve_sqes(unsigned n);
  /// Ops (and internal SQEs) that will still produce a final CQE.
  std::uint64_t in_flight() const noexcept { return in_flight_.load(std::memory_order_relaxed); }
  /// Arms `t` on this worker, which fires it at or after its deadline. May throw (allocation);
  /// `t` is not armed then.
  void arm_timer(timer_node* t) {
    timers_.insert(t, clock_hint_ns_);
    note_timers();
  }
  /// Takes `t` out of this worker's timers if it is still armed; returns whether it was. The
  /// removal is out of line: callers on the completion path test the index and stay small.
  bool disarm_timer(timer_node* t) noexcept {
    if (t->heap_index == timer_node::not_queued) return false;
    remove_timer(t);
    return true;
  }
  /// Submits IORING_OP_ASYNC_CANCEL for `op`, which must be in flight on this worker's ring.
  void cancel_op(io_op* op) noexcept;
  /// This session's read pool (buffer_pool.hpp), created at the first call: with the runtime's
  /// read_pool_* options, or without buffers where the kernel or memory refuses a buffer ring.
  buffer_pool& read_pool();
  buffer_pool* read_pool_if_any() const noexcept { return pool_; }
  /// Called by io_op completion handlers: resume the op's coroutine unless draining.
  void complete_op(io_op* op) noexcept {
    if (draining_) return;
    if (task_header* t = op->node.task) t->clear_wait_on_owner();  // end_wait_owner, inline
    schedule_local(&op->node);
  }

  // ---- any thread ----
  void push_inbox(sched_node* n);
  /// Shutdown step 6: forgets the inbox's nodes and drops those pushed until the next session.
  void discard_inbox() noexcept;
  /// Queues a cancellation message for task `t` (cancel.cpp); the caller wakes this worker.
  void push_cancel(task_header* t);
  /// Runs `a` on this worker between two resumptions (from any thread; wakes the worker). If the
  /// session ends first, `a` runs from close() with draining() true: it must then not submit.
  void post(deferred_action* a);
  /// Submits the SQEs prepared so far, now, retrying while the kernel refuses for the moment (an
  /// fd about to be closed must not stay referenced by an unsubmitted SQE).
  void flush() noexcept;
  bool has_inbox() const noexcept { return inbox_flag_.load(std::memory_order_seq_cst); }
  std::uint32_t queue_len() const noexcept { return queue_.approx_len(); }
  /// Sends this worker a wake-up: from `sender`'s ring with MSG_RING when the caller is a worker
  /// of the same runtime on its own thread, else through this worker's eventfd.
  void wake(worker* sender) noexcept;
  worker_stats snapshot() const noexcept;
  std::uint64_t spawned() const noexcept {
    return counters_.spawned.load(std::memory_order_relaxed);
  }
  void note_spawn() noexcept { worker_counters::bump(counters_.spawned); }
  void note_accept_pause() noexcept { worker_counters::bump(counters_.accept_pauses); }
  void note_pool_dry_read() noexcept { worker_counters::bump(counters_.pool_dry_reads); }
  /// owner-only: the read pool's buffers out (a relaxed store; stats() reads it anywhere).
  void note_pool_out(std::uint64_t n) noexcept {
    counters_.pool_buffers_out.store(n, std::memory_order_relaxed);
  }
  /// owner-only: wake a parked peer after the current resumption (new work to share).
  void request_notify() noexcept { notify_pending_ = true; }

  /// Parking state, guarded by the idle_set's mutex.
  struct park_state {
    bool parked = false;             // in the idle set's parked list
    bool claimed = false;            // removed from it by a producer that sends a wake-up
    bool claimed_to_search = false;  // ... and counted as a searcher by that producer
  } park;

 private:
  // Both only called from run(), in worker.cpp, and inlined there: once per resumption.
  [[gnu::always_inline]] inline sched_node* next_task();
  /// next_task's rare part: drains the inbox when its flag is up, and on the global queue's turn
  /// (every global_queue_interval calls) returns its first task, if any.
  [[gnu::noinline]] sched_node* inbox_and_global();
  /// The LIFO slot's task, if it may run now (max_lifo_runs); else it goes to the back of the
  /// queue.
  sched_node* take_lifo();
  /// The run queue's oldest task. Without peers nobody steals, so the pop needs no locked CAS.
  sched_node* pop_queue() noexcept { return has_peers_ ? queue_.pop() : queue_.pop_unstolen(); }
  /// The pinned list and the run queue when the pinned list has tasks: they take turns.
  [[gnu::noinline]] sched_node* pop_taking_turns();
  [[gnu::noinline]] sched_node* take_from_global();
  [[gnu::always_inline]] inline void run_task(sched_node* n);
  void run_deferred();
  void schedule_pinned(sched_node* n, worker* pin);
  io_uring_sqe* get_sqe_after_submit();
  bool poll();
  unsigned reap();
  void internal_cqe(std::uint64_t user_data);  // a CQE whose user_data is a ud_ tag
  unsigned fire_timers(std::int64_t now);
  sched_node* search();
  void end_search();
  void park_and_wait();
  bool work_visible() const noexcept;
  void drain_inbox();
  void push_queue(sched_node* n) {
    queue_.push(n, [this](sched_node** items, std::uint32_t count) { overflow(items, count); });
    if (has_peers_ && !notify_pending_ && has_shareable_work()) notify_pending_ = true;
  }
  void overflow(sched_node** items, std::uint32_t count);
  void notify_if_shareable() {
    if (notify_pending_) [[unlikely]]
      notify_peer();
  }
  void notify_peer();
  void arm_eventfd();
  void send_msg_ring(int target_fd) noexcept;
  void inc_in_flight() noexcept { worker_counters::bump(in_flight_); }
  void dec_in_flight() noexcept {
    in_flight_.store(in_flight_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  }
  /// One submit; a refusal for the moment (EAGAIN, EBUSY) yields the CPU and counts as 0
  /// consumed. Returns SQEs consumed, or another -errno (the ring is unusable).
  int submit_or_yield() noexcept;
  void drain_ring();
  void cancel_in_batches();
  void link_in_flight(io_op* op) noexcept {
    op->flight_prev = nullptr;
    op->flight_cancel_sent = false;
    op->flight_next = flight_head_;
    if (flight_head_ != nullptr) flight_head_->flight_prev = op;
    flight_head_ = op;
  }
  void unlink_in_flight(io_op* op) noexcept {
    if (op->flight_prev != nullptr) {
      op->flight_prev->flight_next = op->flight_next;
    } else {
      flight_head_ = op->flight_next;
    }
    if (op->flight_next != nullptr) op->flight_next->flight_prev = op->flight_prev;
    op->flight_prev = op->flight_next = nullptr;
  }
  std::uint32_t next_random() noexcept;

  runtime_core& rt_;
  unsigned index_;

  // owner-only state
  run_queue<sched_node*, queue_capacity> queue_;  // stealable; see run_queue.hpp
  node_fifo pinned_;                              // runnable tasks pinned here; not stealable
  // The LIFO slot: the first task the running task woke (a channel's receiver, a joiner), run
  // next, before the queue, without the queue's atomics. Only wakes from inside a resumption use
  // it (`lifo_ok_`), and only the first of them: further wakes, spawns, I/O completions and
  // yields queue FIFO, so tasks woken together run in the order they were woken. Not stealable:
  // the next next_task() takes it, after at most the current task's remaining run. After
  // max_lifo_runs in a row it goes to the back of the queue, so that two tasks handing work to
  // each other do not starve the rest.
  sched_node* lifo_ = nullptr;
  std::uint32_t lifo_runs_ = 0;
  bool lifo_ok_ = false;
  // Queued work beyond the task this worker runs next (the LIFO slot's, or else the queue's
  // head): what is worth waking a peer for.
  bool has_shareable_work() const noexcept {
    return queue_.approx_len() > (lifo_ != nullptr ? 0u : 1u);
  }
  node_fifo deferred_yields_;
  action_fifo deferred_;
  timer_queue timers_;
  // Every io_op with an SQE or CQE outstanding on this ring, newest first (io_op::flight_prev,
  // flight_next): shutdown cancels them one by one. One IORING_ASYNC_CANCEL_ANY would do the same
  // in one SQE, but the kernel restarts its search of the poll table after every match, which
  // took 57 s of system time for 10,000 idle connections.
  io_op* flight_head_ = nullptr;
  std::optional<ring> ring_;
  buffer_pool* pool_ = nullptr;  // this session's read pool; retired when the ring is drained
  void retire_pool() noexcept;
  task_header* current_task_ = nullptr;
  std::coroutine_handle<> trampoline_;  // trampoline mode: the next coroutine to resume
  // SQEs that will still produce a (final) CQE. Owner-only writes; an atomic so that stats()
  // may read it from other threads.
  std::atomic<std::uint64_t> in_flight_{0};
  // The timer heap's size, for stats() from any thread: written by the owner after every change.
  std::atomic<std::uint64_t> timers_armed_{0};
  // The id of the task being resumed, 0 between resumptions (stats()'s running_task).
  std::atomic<std::uint64_t> running_id_{0};
  void note_poll_gap(std::int64_t now) noexcept;  // longest_poll_gap_ns, if since a poll
  // Completions, SQEs or task work waiting, or a timer due: what a yield lets run first.
  bool poll_due() const noexcept {
    return ring_->work_ready() || (!timers_.empty() && steady_now_ns() >= timers_.earliest());
  }
  void note_timers() noexcept { timers_armed_.store(timers_.size(), std::memory_order_relaxed); }
  void remove_timer(timer_node* t) noexcept;  // disarm_timer's removal of a queued node
  std::int64_t clock_hint_ns_ = 0;
  std::uint32_t global_countdown_ = global_queue_interval;  // next_task: the global queue at 0
  std::uint32_t pinned_turn_ = 0;                           // next_task: odd, the pinned list first
  std::uint32_t since_poll_ = 0;
  std::uint32_t rng_;
  bool searching_ = false;
  bool notify_pending_ = false;
  bool has_peers_ = false;  // the runtime has other workers to notify (set by open())
  bool draining_ = false;
  bool eventfd_armed_ = false;
  std::uint64_t eventfd_buf_ = 0;  // target of the eventfd read; owner-only while it is in flight

  // shared state
  mutable std::mutex inbox_mutex_;
  node_fifo inbox_;                      // guarded by inbox_mutex_
  bool inbox_discarding_ = false;        // guarded by inbox_mutex_; set in shutdown step 6
  task_header* cancel_inbox_ = nullptr;  // headers with a cancel message (LIFO); inbox_mutex_
  action_fifo remote_inbox_;             // actions posted by other threads; inbox_mutex_
  std::atomic<bool> inbox_flag_{false};  // either inbox non-empty; written under inbox_mutex_
  std::atomic<int> ring_fd_{-1};         // target of peers' MSG_RING; -1 while closed
  int eventfd_ = -1;
  std::atomic<bool> open_{false};
  worker_counters counters_;
};

}  // namespace corio::detail
