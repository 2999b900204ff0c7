// The scheduler loop of one worker.
//
// Each iteration of run():
//  1. Stop check (runtime_core::stop_requested, set once block_on's main task finished).
//  2. next_task(): every 31st call the global queue first (so spawns from outside and overflow
//     are not starved by a busy local queue); the inbox is moved to the pinned list whenever its
//     flag is up; then the run queue, except that while the pinned list has tasks too the two
//     take turns; when both are empty, a batch from the global queue.
//  3. A task found: resume it (run_task). When it has suspended, run the deferred actions it
//     registered (joins, hand-offs to other threads) and queue the yields it made, then wake a
//     parked peer if there is work to share. Every 61 resumptions poll the ring (step 4) even
//     though work is queued, so completions and timers are not starved by tasks that yield.
//  4. No task: poll() without blocking -- submit prepared SQEs and run pending task work in one
//     io_uring_enter (skipped when the kernel flags nothing pending: IORING_SQ_TASKRUN), reap all
//     CQEs (each makes its op's coroutine runnable here, on the ring's owner), fire expired timers.
//  5. Still nothing: search (idle.hpp P1): steal half of a random peer's run queue, else take a
//     batch from the global queue.
//  6. Still nothing: park (idle.hpp P2): announce, re-check every source, then submit and wait in
//     the ring for one CQE, with the earliest timer deadline as the timeout. A wake-up is a CQE
//     (MSG_RING from a peer, or the eventfd read for non-worker threads), so it cannot be lost.
//
// On stop: drain_ring() cancels every op still in flight (op by op, from the in-flight list, then
// IORING_ASYNC_CANCEL_ANY for the internal SQEs) and reaps until none is left, resuming nobody;
// then the thread leaves run(). Queued nodes are forgotten in close(), once every worker is out,
// and the runtime destroys the pending frames afterwards.
#include "worker.hpp"

#include "buffer_pool.hpp"
#include "cancel.hpp"
#include "runtime_core.hpp"
#include "task_header.hpp"
#include "tsan.hpp"

#include "context.hpp"

#include <fmt/format.h>

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <thread>
#include <utility>

namespace corio::detail {

namespace {
constexpr std::int64_t ms = 1'000'000;
}

worker::worker(runtime_core& rt, unsigned index)
    : rt_(rt), index_(index), rng_(0x9e3779b9u * (index + 1) | 1u) {}

worker::~worker() {
  close();
}

void worker::open() {
  {
    std::lock_guard lock(inbox_mutex_);
    inbox_discarding_ = false;
  }
  eventfd_ = ::eventfd(0, EFD_CLOEXEC);
  if (eventfd_ < 0) {
    int err = errno;
    std::string hint = errno_hint(err);
    throw_ring_error(err, fmt::format("corio: worker {} cannot create its wake-up eventfd{}{}",
                                      index_, hint.empty() ? "" : ": ", hint));
  }
  try {
    ring_.emplace(rt_.ring_settings(), rt_.features());
  } catch (...) {
    ::close(eventfd_);
    eventfd_ = -1;
    throw;
  }
  ring_fd_.store(ring_->fd(), std::memory_order_release);  // pairs: acquire in wake()
  draining_ = false;
  has_peers_ = rt_.worker_count() > 1;
  in_flight_.store(0, std::memory_order_relaxed);
  flight_head_ = nullptr;
  // The time between sessions is no gap.
  counters_.last_poll_ns.store(0, std::memory_order_relaxed);
  clock_hint_ns_ = steady_now_ns();
  open_.store(true, std::memory_order_release);
  arm_eventfd();
}

void worker::close() noexcept {
  // Messages first, whether or not a session ran: every worker has left run(), so no thief and
  // no producer of ready tasks is left; posted actions still get to release what they hold.
  task_header* cancels;
  action_fifo remote;
  {
    std::lock_guard lock(inbox_mutex_);
    inbox_.clear();
    cancels = std::exchange(cancel_inbox_, nullptr);
    remote.splice(remote_inbox_);
    inbox_flag_.store(false, std::memory_order_seq_cst);
  }
  while (task_header* t = cancels) {  // the tasks are gone; their messages only hold references
    cancels = t->cancel_next;
    drop_cancel_message(t);
  }
  draining_ = true;  // posted actions see the session is over and must not submit
  while (deferred_action* a = remote.pop()) a->run(a, *this);
  if (!open_.load(std::memory_order_acquire)) return;
  queue_.unsync_clear();
  lifo_ = nullptr;
  lifo_runs_ = 0;
  lifo_ok_ = false;
  pinned_.clear();
  deferred_yields_.clear();
  deferred_.clear();
  timers_.clear();
  note_timers();
  retire_pool();  // normally done at the end of drain_ring already
  ring_fd_.store(-1, std::memory_order_release);
  ring_.reset();
  ::close(eventfd_);
  eventfd_ = -1;
  open_.store(false, std::memory_order_release);
  searching_ = false;
  notify_pending_ = false;
  park = {};
}

void worker::run() {
  while (!rt_.stop_requested()) {
    sched_node* n = next_task();
    if (n == nullptr) {
      if (poll()) continue;
      n = search();
      if (n == nullptr) {
        park_and_wait();
        continue;
      }
    }
    if (searching_) end_search();
    run_task(n);
    // A task that called fork() and went on in the child lands here, in the child (fork_guard).
    if (fork_guard::epoch() != rt_.fork_epoch()) [[unlikely]] {
      fork_guard::child_resumed_parent_runtime("worker thread");
    }
    if (++since_poll_ >= poll_interval) poll();
  }
  if (searching_) {
    searching_ = false;
    rt_.idle().end_search();
  }
  // The session ends: the interval since the last poll counts too (a task that held the worker
  // until main finished would otherwise never show).
  note_poll_gap(steady_now_ns());
  counters_.last_poll_ns.store(0, std::memory_order_relaxed);
  drain_ring();
}

sched_node* worker::next_task() {
  // Small enough to inline into run(): the rare sources (the inbox, the global queue's turn, the
  // pinned list) are behind one test each, out of line.
  if (inbox_flag_.load(std::memory_order_relaxed) || global_countdown_ == 1) [[unlikely]] {
    if (sched_node* n = inbox_and_global()) return n;
  } else {
    --global_countdown_;
  }
  if (lifo_ != nullptr) {
    if (sched_node* n = take_lifo()) return n;
  }
  lifo_runs_ = 0;
  sched_node* n = pinned_.empty() ? pop_queue() : pop_taking_turns();
  if (n != nullptr) [[likely]]
    return n;
  return take_from_global();
}

sched_node* worker::inbox_and_global() {
  if (inbox_flag_.load(std::memory_order_relaxed)) drain_inbox();
  if (--global_countdown_ == 0) {
    global_countdown_ = global_queue_interval;
    if (sched_node* n = rt_.inject().pop()) {
      worker_counters::bump(counters_.global_pops);
      return n;
    }
  }
  return nullptr;
}

sched_node* worker::take_lifo() {
  sched_node* n = std::exchange(lifo_, nullptr);
  if (lifo_runs_ < max_lifo_runs) {
    ++lifo_runs_;
    return n;
  }
  push_queue(n);  // behind what waited meanwhile
  return nullptr;
}

sched_node* worker::pop_taking_turns() {
  if (++pinned_turn_ & 1) {
    if (sched_node* n = pinned_.pop()) return n;
    return pop_queue();
  }
  if (sched_node* n = pop_queue()) return n;
  return pinned_.pop();
}

sched_node* worker::take_from_global() {
  std::size_t len = rt_.inject().approx_len();
  if (len == 0) return nullptr;
  // Take a fair share, at most half a queue, so peers find some too.
  std::size_t want = std::min<std::size_t>(len / rt_.worker_count() + 1, queue_capacity / 2);
  sched_node* batch[queue_capacity / 2];
  std::size_t got = rt_.inject().pop_batch(batch, want);
  if (got == 0) return nullptr;
  worker_counters::bump(counters_.global_pops, got);
  // Only called with this worker's queue empty (its owner just failed to pop), and thieves only
  // take from it, so half a queue always fits without overflowing.
  for (std::size_t i = 1; i < got; ++i) push_queue(batch[i]);
  return batch[0];
}

void worker::run_task(sched_node* n) {
  current_task_ = n->task;
  lifo_ok_ = true;
  // The id, not the header: stats() may read it on another thread after the task is gone.
  running_id_.store(n->task != nullptr ? n->task->id : 0, std::memory_order_relaxed);
  worker_counters::bump(counters_.tasks_polled);
  n->handle.resume();
  // Trampoline mode (task.hpp): each resumption may hand over to exactly one next coroutine.
  while (trampoline_) std::exchange(trampoline_, nullptr).resume();
  current_task_ = nullptr;
  running_id_.store(0, std::memory_order_relaxed);
  // Its actions (an enrollment, a finished task's joiner) still wake LIFO.
  if (!deferred_.empty() || !deferred_yields_.empty()) run_deferred();
  lifo_ok_ = false;
  notify_if_shareable();
}

void worker::defer(deferred_action* a) noexcept {
  deferred_.push(a);
}

void worker::run_deferred() {
  while (!deferred_.empty() || !deferred_yields_.empty()) {
    while (deferred_action* a = deferred_.pop()) a->run(a, *this);
    lifo_ok_ = false;  // what the poll below reaps, and the yielders, queue FIFO
    // A yield goes behind completions and timers that are due: when there are any, poll now, so
    // that the tasks they wake are queued ahead of the yielder. Otherwise they would wait for up
    // to poll_interval yields: a task computing in 1 ms slices held its worker's timers 61 ms.
    if (!deferred_yields_.empty() && poll_due()) poll();
    // Yields last: behind everything the actions (and that poll) made runnable.
    while (sched_node* n = deferred_yields_.pop()) schedule_local(n);
  }
}

void worker::schedule_pinned(sched_node* n, worker* pin) {
  if (pin == this) {
    pinned_.push(n);
  } else {
    pin->push_inbox(n);
    rt_.notify_worker(*pin, this);
  }
}

void worker::schedule_spawned(sched_node* n) {
  if (n->task == nullptr || n->task->pinned == nullptr) {
    push_queue(n);
  } else {
    schedule_local(n);  // pinned: its own path, never the LIFO slot
  }
}

void worker::overflow(sched_node** items, std::uint32_t count) {
  rt_.inject().push_batch(items, count);
  worker_counters::bump(counters_.overflows, count);
  notify_pending_ = true;
}

void worker::notify_peer() {
  notify_pending_ = false;
  if (has_peers_ && has_shareable_work()) rt_.notify_one(this);
}

void worker::cancel_op(io_op* op) noexcept {
  try {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_cancel64(sqe, reinterpret_cast<std::uintptr_t>(op), 0);
    sqe->user_data = ud_cancel_one;
    inc_in_flight();
    worker_counters::bump(counters_.sqes_submitted);
  } catch (...) {
    std::terminate();  // the ring cannot submit at all
  }
}

int worker::submit_or_yield() noexcept {
  int rc = ring_->submit();
  worker_counters::bump(counters_.enter_calls);
  if (rc != -EAGAIN && rc != -EBUSY) return rc;
  std::this_thread::yield();
  return 0;
}

void worker::reserve_sqes(unsigned n) {
  // Until there is room: a submit refused for now (EAGAIN, EBUSY; see get_sqe) must not let the
  // caller's linked SQEs straddle two submissions, which would cut the link.
  while (ring_->sq_entries() - ring_->sq_pending() < n) {
    if (int rc = submit_or_yield(); rc < 0) {
      throw_ring_error(-rc, fmt::format("corio: worker {}: io_uring_enter failed", index_));
    }
  }
}

io_uring_sqe* worker::get_sqe_after_submit() {
  for (;;) {
    // SQ full: hand everything to the kernel. With IORING_FEAT_NODROP the kernel only refuses
    // under memory pressure (EAGAIN) or while CQEs wait in its overflow list (EBUSY, older
    // kernels); retry after letting other threads run. Reaping here is not an option: this may
    // be called from inside the reap loop.
    if (int rc = submit_or_yield(); rc < 0) {
      throw_ring_error(-rc, fmt::format("corio: worker {}: io_uring_enter failed", index_));
    }
    if (io_uring_sqe* sqe = ring_->try_get_sqe()) return sqe;
  }
}

void worker::note_poll_gap(std::int64_t now) noexcept {
  std::int64_t last = counters_.last_poll_ns.load(std::memory_order_relaxed);
  if (last == 0) return;
  auto gap = static_cast<std::uint64_t>(now - last);
  if (gap > counters_.longest_poll_gap_ns.load(std::memory_order_relaxed)) {
    counters_.longest_poll_gap_ns.store(gap, std::memory_order_relaxed);
  }
}

bool worker::poll() {
  since_poll_ = 0;
  // The one clock read per poll: the gap since the previous poll is how long completions and
  // timers waited behind running tasks (a park in between resets last_poll_ns: idle, not late).
  std::int64_t now = steady_now_ns();
  note_poll_gap(now);
  counters_.last_poll_ns.store(now, std::memory_order_relaxed);
  clock_hint_ns_ = now;
  if (pool_ != nullptr) pool_->drain_returns();  // buffers other threads gave back
  if (ring_->needs_enter(in_flight())) {
    (void)ring_->submit_and_get_events();  // errors: the SQEs stay queued and go next time
    worker_counters::bump(counters_.enter_calls);
  }
  unsigned made = reap();
  if (!timers_.empty()) made += fire_timers(now);
  notify_if_shareable();
  return made > 0;
}

unsigned worker::reap() {
  // Reap no more completions than the run queue has room for: what does not fit would overflow
  // to the global queue, which a busy worker serves one task per global_queue_interval ticks,
  // and those tasks would wait behind many rounds of newer completions (a p99 of 28 ms at 500
  // echo connections). Left in the CQ, completions keep their order and are reaped next poll.
  // The CQ has 4x the SQ's entries, and the kernel keeps any overflow (IORING_FEAT_NODROP).
  // Yielded tasks about to be queued again (run_deferred polls before it queues them) count.
  std::size_t queued = queue_.approx_len() + deferred_yields_.size();
  unsigned budget = queued < queue_capacity ? static_cast<unsigned>(queue_capacity - queued) : 0;
  if (draining_) budget = ~0u;  // nothing is scheduled while draining
  unsigned made = 0;
  unsigned n = ring_->reap(budget, [&](const io_uring_cqe& cqe) {
    if (cqe.user_data <= ud_last || cqe.user_data == LIBURING_UDATA_TIMEOUT) [[unlikely]] {
      internal_cqe(cqe.user_data);
      return;
    }
    auto* op = reinterpret_cast<io_op*>(static_cast<std::uintptr_t>(cqe.user_data));
    tsan::acquire(op);  // pairs: release in op_submitted
    if (!(cqe.flags & IORING_CQE_F_MORE)) {
      unlink_in_flight(op);  // before on_cqe, which may submit the op again (relinking it)
      dec_in_flight();
    }
    if (op->on_cqe) {
      op->on_cqe(op, cqe.res, cqe.flags, *this);
    } else {
      op->res = cqe.res;
      op->cqe_flags = cqe.flags;
      complete_op(op);
    }
    ++made;
  });
  worker_counters::bump(counters_.cqes_reaped, n);
  return made;
}

void worker::internal_cqe(std::uint64_t user_data) {
  switch (user_data) {
    case ud_msg_sent:
    case ud_cancel_all:
    case ud_cancel_one:
    case ud_fire_and_forget:
      dec_in_flight();
      return;
    case ud_eventfd:
      dec_in_flight();
      eventfd_armed_ = false;
      if (!draining_) arm_eventfd();
      return;
    default:  // ud_wake, LIBURING_UDATA_TIMEOUT: nothing to count
      return;
  }
}

void worker::remove_timer(timer_node* t) noexcept {
  timers_.remove(t);
  note_timers();
}

unsigned worker::fire_timers(std::int64_t now) {
  // `now` is the poll's clock read: a timer that expires while the poll reaps fires at the next
  // one (a park computes its timeout from a fresh read, so none is left waiting).
  unsigned n = 0;
  timers_.advance(now);
  while (timer_node* t = timers_.pop_expired(now)) {
    if (t->hooks != nullptr) {
      t->hooks->fire(t, *this);
    } else {
      end_wait_owner(t->node.task);
      schedule_local(&t->node);
    }
    ++n;
  }
  if (n) worker_counters::bump(counters_.timers_fired, n);
  note_timers();
  return n;
}

sched_node* worker::search() {
  std::size_t count = rt_.worker_count();
  if (count == 1) return nullptr;
  if (!searching_) {
    if (!rt_.idle().try_begin_search()) return nullptr;
    searching_ = true;
  }
  std::size_t start = next_random() % count;
  for (std::size_t i = 0; i < count; ++i) {
    worker& peer = rt_.worker_at((start + i) % count);
    if (&peer == this) continue;
    std::uint32_t before = queue_.approx_len();
    if (sched_node* t = peer.queue_.steal_into(queue_)) {
      worker_counters::bump(counters_.steals);
      worker_counters::bump(counters_.tasks_stolen, queue_.approx_len() - before + 1);
      return t;
    }
  }
  return take_from_global();
}

void worker::end_search() {
  searching_ = false;
  // The last searcher to find work hands the search over if there is more to share (P3).
  if (rt_.idle().end_search() && queue_.approx_len() > 0) rt_.notify_one(this);
}

bool worker::work_visible() const noexcept {
  if (rt_.stop_requested() || has_inbox() || rt_.inject().approx_len() != 0) return true;
  if (lifo_ != nullptr || !pinned_.empty() || queue_.approx_len() != 0) return true;
  for (std::size_t i = 0; i < rt_.worker_count(); ++i) {
    const worker& peer = rt_.worker_at(i);
    if (&peer != this && peer.queue_len() != 0) return true;
  }
  return false;
}

void worker::park_and_wait() {
  idle_set& idle = rt_.idle();
  if (!idle.park(*this)) return;  // stopping
  if (searching_) {
    searching_ = false;
    idle.end_search();
  }
  // P2: the re-check after announcing.
  if (work_visible()) {
    searching_ = idle.unpark(*this);
    return;
  }
  std::int64_t timeout = -1;
  if (!timers_.empty()) timeout = std::max<std::int64_t>(0, timers_.earliest() - steady_now_ns());
  worker_counters::bump(counters_.parks);
  counters_.last_poll_ns.store(0, std::memory_order_relaxed);
  worker_counters::bump(counters_.enter_calls);
  (void)ring_->submit_and_wait(timeout);  // -ETIME / -EINTR: just look around again
  clock_hint_ns_ = steady_now_ns();
  // The park is no gap, but from the wake-up on the worker has work again: a task it steals and
  // runs before its next poll must show (the gap then starts here, not at a poll long ago).
  counters_.last_poll_ns.store(clock_hint_ns_, std::memory_order_relaxed);
  searching_ = idle.unpark(*this);
}

void worker::drain_inbox() {
  task_header* cancels;
  action_fifo remote;
  {
    std::lock_guard lock(inbox_mutex_);
    pinned_.splice(inbox_);
    cancels = std::exchange(cancel_inbox_, nullptr);
    remote.splice(remote_inbox_);
    inbox_flag_.store(false, std::memory_order_seq_cst);
  }
  while (task_header* t = cancels) {
    cancels = t->cancel_next;
    process_cancel(t, *this);
  }
  while (deferred_action* a = remote.pop()) a->run(a, *this);
}

void worker::post(deferred_action* a) {
  {
    std::lock_guard lock(inbox_mutex_);
    remote_inbox_.push(a);
    inbox_flag_.store(true, std::memory_order_seq_cst);
  }
  rt_.notify_worker(*this, current_worker());
}

void worker::flush() noexcept {
  // Until the SQ is empty: an fd about to be closed must not stay referenced by an SQE that a
  // refused submit (EAGAIN, EBUSY) left behind, or it would reach the kernel after the close and
  // act on whatever file then has the number. Another error means the ring is unusable.
  while (ring_->sq_pending() != 0) {
    if (submit_or_yield() < 0) return;
  }
}

void worker::push_inbox(sched_node* n) {
  std::lock_guard lock(inbox_mutex_);
  if (inbox_discarding_) return;  // shutdown step 6: see inject_queue::discard
  inbox_.push(n);
  inbox_flag_.store(true, std::memory_order_seq_cst);
}

void worker::discard_inbox() noexcept {
  std::lock_guard lock(inbox_mutex_);
  inbox_.clear();
  inbox_discarding_ = true;
}

void worker::push_cancel(task_header* t) {
  std::lock_guard lock(inbox_mutex_);
  t->cancel_next = cancel_inbox_;
  cancel_inbox_ = t;
  inbox_flag_.store(true, std::memory_order_seq_cst);
}

void worker::wake(worker* sender) noexcept {
  if (sender != nullptr && sender != this && current_worker() == sender &&
      rt_.features().msg_ring && !sender->draining_) {
    int fd = ring_fd_.load(std::memory_order_acquire);  // pairs: release in open()
    if (fd >= 0) {
      sender->send_msg_ring(fd);
      return;
    }
  }
  if (sender != nullptr && current_worker() == sender) {
    worker_counters::bump(sender->counters_.wakeups_sent);
  }
  // write(2) on an eventfd only fails on counter overflow, impossible with increments of 1.
  (void)::eventfd_write(eventfd_, 1);
}

void worker::send_msg_ring(int target_fd) noexcept {
  try {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_msg_ring(sqe, target_fd, 0, ud_wake, 0);
    sqe->user_data = ud_msg_sent;
    inc_in_flight();
    worker_counters::bump(counters_.sqes_submitted);
    worker_counters::bump(counters_.wakeups_sent);
    (void)ring_->submit();
    worker_counters::bump(counters_.enter_calls);
  } catch (...) {
    std::terminate();  // the ring cannot submit at all: nothing else can work either
  }
}

void worker::arm_eventfd() {
  io_uring_sqe* sqe = get_sqe();
  io_uring_prep_read(sqe, eventfd_, &eventfd_buf_, sizeof eventfd_buf_, 0);
  sqe->user_data = ud_eventfd;
  inc_in_flight();
  worker_counters::bump(counters_.sqes_submitted);
  eventfd_armed_ = true;
}

void worker::drain_ring() {
  draining_ = true;
  timers_.clear();  // sleepers are destroyed with their frames; nothing resumes them
  note_timers();
  // Each op by its own user_data (a hash lookup in the kernel), then one CANCEL_ANY for what is
  // not an io_op (the eventfd read, internal SQEs): by then the kernel's tables are nearly empty.
  auto cancel_any = [this] {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
    sqe->user_data = ud_cancel_all;
    note_internal_sqe();
  };
  if (in_flight() != 0) {
    cancel_in_batches();
    cancel_any();
  }
  std::int64_t start = steady_now_ns();
  std::int64_t next_cancel = start + 100 * ms;
  bool warned = false;
  while (in_flight() != 0) {
    (void)ring_->submit_and_wait(50 * ms);
    worker_counters::bump(counters_.enter_calls);
    reap();
    std::int64_t now = steady_now_ns();
    if (in_flight() != 0 && now >= next_cancel) {
      // Some operations (regular file I/O in io-wq, say) cannot be cancelled, only awaited;
      // asking again catches ops that were not yet cancellable the first time.
      for (io_op* op = flight_head_; op != nullptr; op = op->flight_next) cancel_op(op);
      cancel_any();
      next_cancel = now + 100 * ms;
    }
    if (!warned && now - start > 5'000 * ms) {
      fmt::print(stderr, "corio: worker {}: shutdown waits for {} ring operations to complete\n",
                 index_, in_flight());
      warned = true;
    }
  }
  // No receive can take a buffer any more: the pool may go (or wait for its buffers still out).
  retire_pool();
  ring_->unregister_ring_fd();  // the registration belongs to this thread
}

void worker::retire_pool() noexcept {
  if (pool_ != nullptr) std::exchange(pool_, nullptr)->retire();
  note_pool_out(0);  // what is still out belongs to a retired pool now
}

buffer_pool& worker::read_pool() {
  if (pool_ == nullptr) {
    const runtime_options& o = rt_.options();
    unsigned count = rt_.features().buffer_ring ? o.read_pool_buffers : 0;
    try {
      pool_ = new buffer_pool(*this, *ring_, count, o.read_pool_buffer_size, 0);
    } catch (const std::system_error&) {
      // No buffer ring (memory, or a kernel that refuses it): pooled reads use heap buffers.
      pool_ = new buffer_pool(*this, *ring_, 0, o.read_pool_buffer_size, 0);
    }
  }
  return *pool_;
}

void worker::cancel_in_batches() {
  // A cancelled poll request leaves the kernel's poll table only when its task work runs (with
  // DEFER_TASKRUN: at our next GETEVENTS enter); until then every lookup walks past it. So cancel
  // a batch, let the kernel run the task work and reap, then the next batch. The batch is
  // picked before any cancel is sent: cancel_op only uses an op's address as user_data, and
  // reaping (which unlinks ops) happens only after the whole batch went out.
  constexpr std::size_t batch = 128;
  io_op* targets[batch];
  for (;;) {
    std::size_t n = 0;
    for (io_op* op = flight_head_; op != nullptr && n < batch; op = op->flight_next) {
      if (op->flight_cancel_sent) continue;
      op->flight_cancel_sent = true;
      targets[n++] = op;
    }
    if (n == 0) return;
    for (std::size_t i = 0; i < n; ++i) cancel_op(targets[i]);
    // The kernel runs a bounded amount of deferred task work per enter: enter until none is
    // flagged (a bounded number of times where the kernel cannot flag it).
    for (int i = 0; i < 64; ++i) {
      (void)ring_->submit_and_get_events();
      worker_counters::bump(counters_.enter_calls);
      reap();
      if (!ring_->task_work_pending()) break;
    }
  }
}

worker_stats worker::snapshot() const noexcept {
  auto get = [](const std::atomic<std::uint64_t>& c) { return c.load(std::memory_order_relaxed); };
  worker_stats s;
  s.tasks_polled = get(counters_.tasks_polled);
  s.steals = get(counters_.steals);
  s.tasks_stolen = get(counters_.tasks_stolen);
  s.global_pops = get(counters_.global_pops);
  s.overflows = get(counters_.overflows);
  s.sqes_submitted = get(counters_.sqes_submitted);
  s.cqes_reaped = get(counters_.cqes_reaped);
  s.enter_calls = get(counters_.enter_calls);
  s.parks = get(counters_.parks);
  s.wakeups_sent = get(counters_.wakeups_sent);
  s.timers_fired = get(counters_.timers_fired);
  s.accept_pauses = get(counters_.accept_pauses);
  s.pool_dry_reads = get(counters_.pool_dry_reads);
  s.pool_buffers_out = get(counters_.pool_buffers_out);
  s.longest_poll_gap_ns = get(counters_.longest_poll_gap_ns);
  s.queue_depth = queue_.approx_len();  // the LIFO slot is owner-only: not counted
  s.ops_in_flight = in_flight();
  s.timers_armed = timers_armed_.load(std::memory_order_relaxed);
  // A stall in progress: the task running now, and how long ago this worker last polled.
  s.running_task = running_id_.load(std::memory_order_relaxed);
  std::int64_t last = counters_.last_poll_ns.load(std::memory_order_relaxed);
  if (s.running_task != 0 && last != 0) {
    s.poll_age_ns = static_cast<std::uint64_t>(std::max<std::int64_t>(0, steady_now_ns() - last));
  }
  return s;
}

std::uint32_t worker::next_random() noexcept {
  // xorshift32: only spreads victims, needs no quality.
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 17;
  rng_ ^= rng_ << 5;
  return rng_;
}

}  // namespace corio::detail
