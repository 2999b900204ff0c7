// The waiting machinery of channels, sync primitives and select (wait_list.hpp).
//
// A coroutine's wait on one primitive (simple_wait), from its await_suspend (await_ready says
// no: the attempt and the enrollment share one lock acquisition):
//  1. Under the primitive's lock, attempt() the operation. Done: unlock and resume at once.
//  2. Else, still under the lock, begin_wait (the cancellable wait point) and enroll(). Unlock.
//     From here on only a waker (under the lock) or the cancel action (on this worker) decide,
//     by claiming the target. With several workers, step 2 is deferred to the worker until the
//     coroutine has fully suspended (once the enrollment is visible, another worker may resume
//     it at any moment); the lock stays held across that short hand-over, so that the attempt's
//     verdict still holds. Nothing else runs on the worker in between: a resumption ends with
//     one suspension, which defers at most one action, and the worker runs it first.
//  3. On resumption, finish(): claimed by a waker -> the operation was completed for us, and the
//     waker unlinked us; we take the lock once, which waits until the waker, who woke us while
//     holding it, let go of the primitive. Cancelled -> unlink ourselves under the lock.
//
// Why wakers wake under the lock: a frame destroyed at shutdown unlinks its waiter under the same
// lock (simple_wait's destructor), so a waker on a thread outside the runtime either finds the
// waiter still linked, or finished with it before the frame goes.
#include <corio/detail/wait_list.hpp>

#include "../context.hpp"
#include "../runtime_core.hpp"
#include "../task_header.hpp"
#include "../worker.hpp"

#include <linux/membarrier.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <exception>
#include <stdexcept>

namespace corio::detail {

namespace {

// One round of waiting for a lock's holder: a pause for the first rounds, then the CPU, since
// the holder may have been preempted.
void spin_wait(unsigned& spins) noexcept {
  if (spins < 64) {
    __builtin_ia32_pause();
    ++spins;
  } else {
    sched_yield();
  }
}

// Revocations in the process (spin_lock::revocation_limit). Relaxed: a heuristic, read by each
// biased construction, written by each revocation.
std::atomic<unsigned> revocation_count{0};

}  // namespace

void spin_lock::lock_slow() noexcept {
  unsigned spins = 0;
  for (;;) {
    while (locked_.load(std::memory_order_relaxed)) spin_wait(spins);
    if (!locked_.exchange(true, std::memory_order_acquire)) return;
  }
}

unsigned spin_lock::revocations() noexcept {
  return revocation_count.load(std::memory_order_relaxed);
}

void spin_lock::reset_revocations() noexcept {
  revocation_count.store(0, std::memory_order_relaxed);
}

std::uintptr_t spin_lock::bias_home() noexcept {
  worker* w = current_worker();
  if (w == nullptr || !w->runtime().home_biased_locks()) return 0;
  if (revocation_count.load(std::memory_order_relaxed) >= revocation_limit) return 0;
  return this_thread_tag();
}

void spin_lock::revoke_bias() noexcept {
  revocation_count.fetch_add(1, std::memory_order_relaxed);
  biased_.store(false, std::memory_order_relaxed);
  // After the barrier, the home thread either made its store of home_busy_ = true visible to us
  // (we wait below), or it has not yet read biased_, and will read false and take locked_, which
  // we hold. The runtime registered the process for this command (probe_kernel), and the
  // registration is never undone.
  if (::syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) != 0) {
    std::perror("corio: membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) failed after registration");
    std::terminate();
  }
  // Acquire pairs with the home thread's release of home_busy_: its critical section, if it was
  // in one, happened before ours.
  unsigned spins = 0;
  while (home_busy_.load(std::memory_order_acquire)) spin_wait(spins);
}

void wait_list::push_back(waiter* w) noexcept {
  w->list_next = nullptr;
  w->list_prev = tail_;
  if (tail_ != nullptr) {
    tail_->list_next = w;
  } else {
    head_ = w;
  }
  tail_ = w;
  w->list = this;
  w->linked = true;
}

void wait_list::remove(waiter* w) noexcept {
  if (w->list_prev != nullptr) {
    w->list_prev->list_next = w->list_next;
  } else {
    head_ = w->list_next;
  }
  if (w->list_next != nullptr) {
    w->list_next->list_prev = w->list_prev;
  } else {
    tail_ = w->list_prev;
  }
  w->list_prev = w->list_next = nullptr;
  w->linked = false;
}

namespace {

// claim() by a waker, which holds the lock of the primitive the enrollment is in. A target with an
// owner (a simple_wait, enrolled in one primitive) has two kinds of claimers: wakers under that
// lock, which the caller holds, and its cancel action, which runs on the owner's thread. So on that
// thread a plain load and store decide; elsewhere, and for a select (which other threads claim
// under other locks), the compare-and-swap does.
bool claim_by_waker(waiter& w) noexcept {
  wait_target& t = *w.target;
  if (t.owner == nullptr || t.owner != current_worker()) return t.claim(w.branch);
  if (t.state.load(std::memory_order_relaxed) != wait_target::pending) return false;
  t.state.store(w.branch, std::memory_order_relaxed);
  t.woken_on = t.owner;  // this thread's worker, found above: schedule_target needs no lookup
  return true;
}

}  // namespace

waiter* wait_list::claim_from_front() noexcept {
  while (waiter* w = head_) {
    remove(w);
    if (claim_by_waker(*w)) return w;
  }
  return nullptr;
}

waiter* wait_list::claim_except(const wait_target* self) noexcept {
  for (waiter* w = head_; w != nullptr;) {
    waiter* next = w->list_next;
    if (w->target->outcome() != wait_target::pending) {
      remove(w);
    } else if (w->target != self && claim_by_waker(*w)) {
      remove(w);
      return w;
    }
    w = next;
  }
  return nullptr;
}

namespace {

// Called under the lock of the primitive the waiter enrolled in: its begin_wait happened before.
// `woken_on` is null unless claim_by_waker already found this thread's worker.
void schedule_target(wait_target& t) noexcept {
  worker* w = t.woken_on;
  if (w == nullptr) {
    w = current_worker();
    t.woken_on = w;
  }
  task_header* task = t.node.task;
  if (task == nullptr) {
    if (w != nullptr) w->schedule_local(&t.node);
    return;
  }
  end_wait_enrolled(w, task, &t);  // a no-op for a wait that registered no wait point
  if (w != nullptr && &w->runtime() == task->runtime) {
    w->schedule_local(&t.node);  // schedule_from's first case, inline
  } else {
    task->runtime->schedule_from(w, &t.node);
  }
}

// Cancel action of a coroutine's wait (cancel.cpp step 3), on the owner worker under the task's
// cancel lock: claims the target for cancellation unless a waker got there first.
void cancel_wait(wait_point* p, worker& w) noexcept {
  auto* t = static_cast<wait_target*>(p);
  if (!t->claim(wait_target::cancelled_state)) return;  // the waker schedules it
  t->cancelled = true;
  if (t->two_sided && t->arrivals.fetch_add(1, std::memory_order_acq_rel) == 0) {
    return;  // the select is still enrolling; it schedules itself when done
  }
  end_wait_owner(t->node.task);
  w.schedule_local(&t->node);
}

// Step 2, under the lock that attempted: false if the task was cancelled before the wait began
// (nothing enrolled; the awaiter reports it).
bool enroll_locked(simple_wait& s, worker& w) noexcept {
  s.cancel = &cancel_wait;
  s.owner = &w;
  if (s.cancellable && !begin_wait(w, s.node.task, &s, wait_kind::sync)) {
    s.lock->unlock();
    s.state.store(wait_target::cancelled_state, std::memory_order_relaxed);
    s.cancelled = true;
    s.settled = true;  // never enrolled
    return false;
  }
  s.enroll(&s);
  s.lock->unlock();
  return true;
}

// Step 2 with several workers: runs once the coroutine has suspended, the lock still held.
void enroll_deferred(deferred_action* a, worker& w) noexcept {
  auto* s = static_cast<simple_wait*>(a);
  if (!enroll_locked(*s, w)) w.schedule_local(&s->node);
}

}  // namespace

void wake(wait_target& t) noexcept {
  if (t.is_thread) {
    // The thread returns only after taking the primitive's lock once more (block()), so the word
    // is still alive while we notify.
    t.thread_word.store(1, std::memory_order_release);
    t.thread_word.notify_one();
    return;
  }
  if (t.two_sided && t.arrivals.fetch_add(1, std::memory_order_acq_rel) == 0) return;
  schedule_target(t);
}

bool simple_wait::suspend(std::coroutine_handle<> h) {
  lock->lock();
  if (attempt(this)) {
    lock->unlock();
    state.store(0, std::memory_order_relaxed);
    completed_here = true;
    return false;
  }
  worker* w = current_worker();
  if (w == nullptr) {
    lock->unlock();
    throw std::logic_error(
        "corio: a channel or sync primitive can only be awaited by a task on a worker thread; "
        "use its blocking form elsewhere");
  }
  node.handle = h;
  node.task = w->current_task();
  if (w->alone()) {
    // The enrollment waits for the coroutine to have suspended only because a waker on another
    // worker could resume it earlier. A runtime with one worker has no other thread that resumes
    // tasks (a foreign waker or a cancellation schedules through this worker), so it enrolls now.
    return enroll_locked(*this, *w);
  }
  run = &enroll_deferred;
  w->defer(this);  // step 2, holding the lock
  return true;
}

bool simple_wait::finish_after_wait() noexcept {
  if (outcome() >= 0) {
    // A waker on this same worker finished with the primitive before this coroutine could run
    // (it woke us inside a resumption or action of this thread, which released the lock before
    // the worker took the next task); one on another thread may still hold the lock.
    if (woken_on != current_worker()) {
      lock->lock();
      lock->unlock();
    }
    settled = true;  // the waker unlinked the enrollment
    return true;
  }
  unlink();
  return false;
}

void simple_wait::unlink_locked() noexcept {
  lock->lock();
  // Only a wait that ended by cancellation (or a frame destroyed mid-wait) is still linked.
  if (enrollment->linked) enrollment->list->remove(enrollment);
  lock->unlock();
  settled = true;
}

void simple_wait::block() {
  if (current_worker() != nullptr) {
    throw std::logic_error(
        "corio: the blocking form of a channel or sync primitive was called on a worker thread, "
        "where it would stall the scheduler; co_await it instead");
  }
  is_thread = true;
  lock->lock();
  if (attempt(this)) {
    lock->unlock();
    state.store(0, std::memory_order_relaxed);
    completed_here = true;
    return;
  }
  enroll(this);
  lock->unlock();
  thread_word.wait(0, std::memory_order_acquire);
  while (thread_word.load(std::memory_order_acquire) == 0) thread_word.wait(0);
  // The waker notifies under the lock: once we hold it, it is done with this object.
  lock->lock();
  lock->unlock();
}

}  // namespace corio::detail
