// child_group: the children of a scope, a when_all / when_any, or a completion_queue
// (include/corio/detail/child_group.hpp has the ownership diagram).
//
// A child's life, each step under the group's spin lock unless said otherwise:
//  1. spawn_child (the spawner's thread): the record and the child_main frame are allocated; the
//     frame's ticket owns the record and one reference to the group. start_child creates the
//     root header, links the record into running_ (pending_ + 1) and, if the group was
//     cancelled (sticky), sets the child's cancel flag; only then is the child scheduled. The
//     header is recorded before the child can run, so every linked record names a live header.
//     Then the header's join_handle reference is dropped: the header goes when the child
//     completes.
//  2. cancel_all (any thread): for every linked record, join_handle::cancel's request on its
//     header. The header is alive: a record is unlinked (step 3 or 4) before its child can
//     complete, and cancel_all holds the lock. Lock order: group lock, then a task's cancel
//     lock (wait_list.hpp), then a worker's inbox mutex.
//  3. finish (the child's last action, on its worker): unlink, pending_ - 1, apply the mode
//     (record the first error and cancel the rest / pick the winner and cancel the rest /
//     queue the event, handing it straight to a waiting next()), and if pending_ reached 0 wake
//     every all_finished waiter. Wakes happen under the lock (the wait_list protocol). The
//     child's frame then only drops its group reference.
//  4. abandon (the child's frame destroyed before finish: shutdown, or spawning failed): unlink
//     if linked, free the record. Nobody is woken: at shutdown every waiting frame is destroyed
//     too, without being resumed.
//
// Why a waiter cannot miss the last finish: all_finished's attempt (pending_ == 0) and its
// enrollment run under the lock (simple_wait), and finish decrements and wakes under the same
// lock. A value or error written by a child before finish is visible to the owner after its
// wait: the child's writes precede its unlock; the owner either took the lock afterwards
// (attempt) or was woken under it (the scheduler's queue hand-off is release/acquire).
//
// The group itself is reference counted (the owner, plus one per child frame), so a child never
// touches freed state even when the owner -- a completion_queue -- is destroyed first.
#include <corio/detail/child_group.hpp>
#include <corio/error.hpp>

#include "cancel.hpp"
#include "context.hpp"
#include "runtime_core.hpp"
#include "task_header.hpp"
#include "worker.hpp"

#include <mutex>
#include <stdexcept>

namespace corio::detail {

bool is_operation_cancelled(const std::exception_ptr& e) noexcept;  // ops.cpp

namespace {

void delete_plain(group_child* c) noexcept {
  delete c;
}

group_wait* as_group_wait(waiter* w) noexcept {
  return static_cast<group_wait*>(static_cast<simple_wait*>(w));
}

}  // namespace

group_child* new_plain_child(std::size_t index) {
  auto* c = new group_child;
  c->index = index;
  c->destroy = &delete_plain;
  return c;
}

child_group* child_group::create(mode m) {
  return new child_group(m);
}

void child_group::release() noexcept {
  // Release by every decrement, acquire by the last: the destructor sees every write made under
  // the other references (the children's events, above all).
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

child_group::~child_group() {
  // Every child frame holds a reference, so no child runs: running_ is empty. Events nobody took
  // (a completion_queue destroyed with unread events) go with the group.
  while (group_child* c = ready_head_) {
    ready_head_ = c->next;
    c->destroy(c);
  }
}

void child_group::start_child(group_child* c, std::coroutine_handle<> frame,
                              promise_base* promise) {
  worker* w = current_worker();
  runtime_core* rt = w != nullptr ? &w->runtime() : current_runtime();
  if (rt == nullptr) {
    frame.destroy();  // its ticket frees `c`
    throw std::logic_error(
        "corio: a child task can only be started from a task or from spawn_blocking code");
  }
  // Destroys the frame on throw. The child's coroutine is a task<>: no result cell.
  task_header* t = task_header::create(*rt, frame, *promise, &void_cell_ops, nullptr);
  if (w != nullptr) share_locals(t, w->current_task());
  bool cancel;
  {
    std::lock_guard g(lock_);
    c->header = t;
    c->prev = nullptr;
    c->next = running_;
    if (running_ != nullptr) running_->prev = c;
    running_ = c;
    c->linked = true;
    ++pending_;
    cancel = cancelled_;
  }
  // Not started yet: the request only sets the flag, and the child's first suspension throws.
  // A concurrent cancel_all may request it too; requests are idempotent.
  if (cancel) request_cancel(t);
  rt->start_root(t, w);
  // The header was created with a join_handle reference, which kept it alive through
  // start_root (the child may run, finish and go on another worker as soon as it is queued).
  // Nobody joins a child: drop the reference, as a detached join_handle does. child_main ends
  // without an exception, so nothing goes to the unhandled-exception hook.
  release_handle(t, true);
}

void child_group::unlink_locked(group_child* c) noexcept {
  if (c->prev != nullptr) {
    c->prev->next = c->next;
  } else {
    running_ = c->next;
  }
  if (c->next != nullptr) c->next->prev = c->prev;
  c->prev = c->next = nullptr;
  c->linked = false;
  --pending_;
}

void child_group::finish(group_child* c, std::exception_ptr error) noexcept {
  // Outside the lock: classifying an exception rethrows it.
  const bool cancelled_error = error && is_operation_cancelled(error);
  bool free_record = true;
  {
    std::lock_guard g(lock_);
    unlink_locked(c);
    switch (mode_) {
      case mode::fail_fast:
        // A child's operation_cancelled after the group was cancelled is the cancellation
        // taking effect, not a failure.
        if (error && !(cancelled_error && cancelled_)) {
          if (!error_) error_ = std::move(error);
          if (!cancelled_) {
            cancelled_ = true;
            cancel_locked();
          }
        }
        break;
      case mode::first_wins:
        if (winner_ == no_winner && !(cancelled_error && cancelled_)) {
          winner_ = c->index;
          error_ = std::move(error);
          cancelled_ = true;
          cancel_locked();
        }
        break;
      case mode::collect:
        free_record = false;
        c->error = std::move(error);
        deliver_locked(c);
        break;
    }
    if (pending_ == 0) wake_all_finished_locked();
  }
  if (free_record) c->destroy(c);
}

void child_group::abandon(group_child* c) noexcept {
  {
    std::lock_guard g(lock_);
    if (c->linked) unlink_locked(c);
  }
  c->destroy(c);
}

void child_group::cancel_all(bool sticky) {
  std::lock_guard g(lock_);
  if (sticky) cancelled_ = true;
  cancel_locked();
}

void child_group::cancel_locked() {
  for (group_child* c = running_; c != nullptr; c = c->next) request_cancel(c->header);
  // The body's task is alive and still in the body while body_task_ is set (exit_body clears
  // it under this lock before leaving the scope).
  if (body_task_ != nullptr) cancel_scope_of(body_task_, &body_scope_);
}

void child_group::deliver_locked(group_child* c) noexcept {
  if (waiter* w = event_waiters_.pop_claimed()) {
    as_group_wait(w)->taken = c;
    wake(*w->target);
    return;
  }
  c->next = nullptr;
  if (ready_tail_ != nullptr) {
    ready_tail_->next = c;
  } else {
    ready_head_ = c;
  }
  ready_tail_ = c;
  ++ready_count_;
}

void child_group::wake_all_finished_locked() noexcept {
  while (waiter* w = idle_waiters_.pop_claimed()) wake(*w->target);
  // A completion_queue with nothing left: every next() waiting gets "no more events". (Waiters
  // only enroll while ready_ is empty, and deliveries go to them first.)
  if (ready_head_ == nullptr) {
    while (waiter* w = event_waiters_.pop_claimed()) {
      as_group_wait(w)->taken = nullptr;
      wake(*w->target);
    }
  }
}

void child_group::enter_body() {
  task_header* t = current_task();
  if (t == nullptr) return;
  enter_scope(t, &body_scope_);
  std::lock_guard g(lock_);
  body_task_ = t;
}

void child_group::exit_body(const std::exception_ptr& body_error) {
  task_header* t;
  {
    std::lock_guard g(lock_);
    t = std::exchange(body_task_, nullptr);
  }
  // No cancel_scope_of can target the scope any more; a message already queued for it finds it
  // gone from the chain (cancel.cpp step 3 re-checks under the task's lock).
  if (t != nullptr) exit_scope(t, &body_scope_);
  if (!body_error) return;
  const bool cancelled_error = is_operation_cancelled(body_error);
  // The task itself, or an enclosing scope (a corio::timeout), was cancelled.
  const bool task_cancelled = is_cancelled(current_task());
  std::lock_guard g(lock_);
  if (!(cancelled_error && (cancelled_ || task_cancelled)) && !error_) error_ = body_error;
  cancelled_ = true;
  cancel_locked();
}

std::size_t child_group::pending() const noexcept {
  std::lock_guard g(lock_);
  return pending_;
}

std::size_t child_group::ready() const noexcept {
  std::lock_guard g(lock_);
  return ready_count_;
}

bool child_group::attempt_all_finished(simple_wait* w) noexcept {
  return static_cast<group_wait*>(w)->group.pending_ == 0;
}

void child_group::enroll_all_finished(simple_wait* w) noexcept {
  static_cast<group_wait*>(w)->group.idle_waiters_.push_back(w);
}

bool child_group::attempt_next_event(simple_wait* w) noexcept {
  auto* self = static_cast<group_wait*>(w);
  child_group& g = self->group;
  if (group_child* c = g.ready_head_) {
    g.ready_head_ = c->next;
    if (g.ready_head_ == nullptr) g.ready_tail_ = nullptr;
    c->next = nullptr;
    --g.ready_count_;
    self->taken = c;
    return true;
  }
  if (g.pending_ == 0) {
    self->taken = nullptr;  // exhausted
    return true;
  }
  return false;
}

void child_group::enroll_next_event(simple_wait* w) noexcept {
  static_cast<group_wait*>(w)->group.event_waiters_.push_back(w);
}

group_wait::group_wait(child_group& g, kind k, bool is_cancellable) noexcept : group(g) {
  lock = &g.lock_;
  if (k == kind::all_finished) {
    attempt = &child_group::attempt_all_finished;
    what = "scope: its children finishing";
    enroll = &child_group::enroll_all_finished;
  } else {
    attempt = &child_group::attempt_next_event;
    what = "completion_queue next";
    enroll = &child_group::enroll_next_event;
  }
  cancellable = is_cancellable;
}

group_wait::~group_wait() {
  if (taken != nullptr) taken->destroy(taken);
}

task<bool> join_children(child_group& g) {
  // Not `if (co_await ...)`: GCC 12 miscompiles a co_await in an if condition here (the
  // coroutine returns to its resumer without running at all).
  const bool completed = co_await all_finished(g, true);
  if (completed) co_return false;
  // Cancelled: the children go too, and are waited for whatever happens now.
  g.cancel_all(true);
  co_await all_finished(g, false);
  co_return true;
}

}  // namespace corio::detail
