// Cancellation: join_handle::cancel, timeout scopes, and the wait points they act on.
//
// Each root task has at most one registered wait point (wait_point.hpp) and, in its header, a
// small spinlock (`cancel_lock`) guarding the wait pointer, its owner worker and the scope chain.
//
//  1. begin_wait (the suspending worker W): under the lock, if the task or an active scope is
//     cancelled, refuse (the awaiter does not suspend and throws); else record (p, W).
//  2. A cancel request (any thread) first sets its flag -- the task's cancel_flag, or a scope's
//     `cancelled` -- then poke()s: under the lock, if a wait is registered and no message is in
//     flight, it sets CANCEL_MSG in the task's state and queues the header in the owner's cancel
//     inbox. The requester never touches the wait point itself: it may complete at any moment.
//  3. The owner W processes the message between two resumptions: under the lock, if the task
//     still waits on a point W owns and is cancelled, it runs the point's cancel action, which
//     makes the coroutine runnable exactly once (for a ring op: after the CQE of the cancelled op).
//     The point is alive: only W can complete it, and W is busy here. If the task now waits on
//     another worker's point, the message is forwarded there. Else it is dropped. CANCEL_MSG is
//     cleared under the same lock, so a request racing with the processing either is seen by it
//     or queues a new message. Clearing it may let another thread release the header's last
//     reference while W still holds the lock: task_header::destroy waits until it is released.
//  4. A wait that completes on its owner clears the wait pointer without the lock (only the owner
//     could otherwise act on it); one completed by another thread (a join, a blocking job) clears
//     it under the lock, so a processing owner sees either the live point or none.
//
//  5. A runtime with one worker: begin_wait takes no lock (it is the worker's most frequent
//     locked instruction, about 6 ns). A poke on the worker's own thread runs as above, in
//     sequence with every begin_wait. A poke from any other thread skips the `wait` test and
//     always queues its message to the worker (under the lock, as above, which serializes it
//     with a processing of an earlier message). The worker processes it after any begin_wait it
//     raced with, so it finds that wait registered, and sees the flag: the poker wrote it before
//     the inbox's mutex that the worker takes to drain. A message that finds the task running
//     is dropped; the flag stays for the next begin_wait.
//
// No lost cancellation: the flag is written before poke takes the lock, and begin_wait reads it
// under the same lock, so either begin_wait sees the flag or poke sees the registered wait (with
// one worker, step 5). The header outlives a queued message: CANCEL_MSG is one of the references
// that keep it alive.
#include "cancel.hpp"

#include "runtime_core.hpp"
#include "task_header.hpp"
#include "worker.hpp"

#include "context.hpp"

#include <corio/error.hpp>

namespace corio::detail {

namespace {

class cancel_guard {
 public:
  explicit cancel_guard(task_header* t) noexcept : t_(t) {
    // Acquire pairs with the release in the destructor: the holder sees the previous holder's
    // writes to wait, wait_owner and scope.
    while (t_->cancel_lock.exchange(true, std::memory_order_acquire)) {
      while (t_->cancel_lock.load(std::memory_order_relaxed)) __builtin_ia32_pause();
    }
  }
  ~cancel_guard() { t_->cancel_lock.store(false, std::memory_order_release); }
  cancel_guard(const cancel_guard&) = delete;
  cancel_guard& operator=(const cancel_guard&) = delete;

 private:
  task_header* t_;
};

bool chain_cancelled(const task_header* t) noexcept {
  if (t->cancel_flag.load(std::memory_order_acquire)) return true;
  for (const cancel_scope* s = t->scope; s != nullptr; s = s->parent) {
    if (s->cancelled.load(std::memory_order_acquire)) return true;
  }
  return false;
}

}  // namespace

bool begin_wait(worker& w, task_header* t, wait_point* p, wait_kind kind) {
  p->cancelled = false;
  p->kind = kind;
  if (t == nullptr) return true;
  if (w.alone()) {  // step 5: every poke of this runtime is sequential with this code
    if (chain_cancelled(t)) return false;
    t->wait_owner = &w;
    t->wait_since_ns = w.clock_hint();
    t->wait.store(p, std::memory_order_relaxed);
    return true;
  }
  cancel_guard g(t);
  if (chain_cancelled(t)) return false;
  t->wait_owner = &w;
  t->wait_since_ns = w.clock_hint();
  t->wait.store(p, std::memory_order_relaxed);
  return true;
}

wait_snapshot registered_wait(task_header* t) noexcept {
  cancel_guard g(t);
  wait_point* p = t->wait.load(std::memory_order_relaxed);
  if (p == nullptr) return {};
  return {p, t->wait_owner, t->wait_since_ns};
}

void end_wait_owner(task_header* t) noexcept {
  if (t != nullptr) t->clear_wait_on_owner();
}

void end_wait_foreign(task_header* t, wait_point* p) noexcept {
  if (t == nullptr) return;
  cancel_guard g(t);
  if (t->wait.load(std::memory_order_relaxed) == p)
    t->wait.store(nullptr, std::memory_order_relaxed);
}

void end_wait_enrolled(worker* w, task_header* t, wait_point* p) noexcept {
  if (t == nullptr) return;
  // wait_owner was last written by the begin_wait that happened before (a later one needs this
  // wake first), so reading it here races with no write. On the owner, the clear needs no lock,
  // as in end_wait_owner: a concurrent poke or registered_wait reads `wait` atomically, and
  // nobody else clears it (the waker's claim excluded the cancel action). A wait that registered
  // nothing (not cancellable) leaves `wait` null or another's: the comparison keeps it.
  if (w != nullptr && t->wait_owner == w) {
    if (t->wait.load(std::memory_order_relaxed) == p) t->clear_wait_on_owner();
    return;
  }
  end_wait_foreign(t, p);
}

bool is_cancelled(const task_header* t) noexcept {
  return t != nullptr && chain_cancelled(t);
}

task_header* current_task() noexcept {
  worker* w = current_worker();
  return w ? w->current_task() : nullptr;
}

void throw_if_cancelled() {
  if (is_cancelled(current_task())) throw operation_cancelled();
}

void poke(task_header* t) {
  worker* target = nullptr;
  runtime_core& rt = *t->runtime;
  // Step 5: the only worker's begin_wait takes no lock, so from another thread the `wait` test
  // below could miss a wait being registered; the message goes to the worker regardless.
  worker* self = current_worker();
  const bool outside_only_worker = rt.worker_count() == 1 && self != &rt.worker_at(0);
  {
    cancel_guard g(t);
    if (!outside_only_worker && t->wait.load(std::memory_order_relaxed) == nullptr) {
      return;  // running: step 1 sees it
    }
    std::uint32_t prev = t->state.fetch_or(task_header::cancel_msg, std::memory_order_acq_rel);
    if (prev & task_header::cancel_msg) return;  // a message is on its way; it will look again
    target = outside_only_worker ? &rt.worker_at(0) : t->wait_owner;
    target->push_cancel(t);
  }
  target->runtime().notify_worker(*target, self);
}

void request_cancel(task_header* t) {
  t->cancel_flag.store(true, std::memory_order_release);
  poke(t);
}

void process_cancel(task_header* t, worker& w) noexcept {
  worker* forward_to = nullptr;
  std::uint32_t prev = 0;
  {
    cancel_guard g(t);
    wait_point* p = t->wait.load(std::memory_order_relaxed);
    if (p != nullptr && t->wait_owner != &w) {
      forward_to = t->wait_owner;  // keeps CANCEL_MSG: the message moves on
      forward_to->push_cancel(t);
    } else {
      if (p != nullptr && !p->cancelled && chain_cancelled(t)) p->cancel(p, w);
      prev = t->state.fetch_and(~task_header::cancel_msg, std::memory_order_acq_rel);
    }
  }
  if (forward_to != nullptr) {
    w.runtime().notify_worker(*forward_to, &w);
    return;
  }
  t->destroy_if_unreferenced(prev & ~task_header::cancel_msg);
}

void drop_cancel_message(task_header* t) noexcept {
  std::uint32_t prev = t->state.fetch_and(~task_header::cancel_msg, std::memory_order_acq_rel);
  t->destroy_if_unreferenced(prev & ~task_header::cancel_msg);
}

void enter_scope(task_header* t, cancel_scope* s) noexcept {
  cancel_guard g(t);
  s->parent = t->scope;
  t->scope = s;
}

void exit_scope(task_header* t, cancel_scope* s) noexcept {
  cancel_guard g(t);
  t->scope = s->parent;
}

void cancel_scope_of(task_header* t, cancel_scope* s) {
  s->cancelled.store(true, std::memory_order_release);
  poke(t);
}

}  // namespace corio::detail
