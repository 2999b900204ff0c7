// The out-of-line halves of the awaiters in the public headers. Each reads the current worker
// afresh (context.hpp), on the thread that is suspending the coroutine.
#include "cancel.hpp"
#include "context.hpp"
#include "runtime_core.hpp"
#include "task_header.hpp"
#include "worker.hpp"

#include <corio/blocking.hpp>
#include <corio/detail/diagnostics.hpp>
#include <corio/error.hpp>
#include <corio/time.hpp>
#include <corio/timeout.hpp>
#include <corio/yield.hpp>

#include <fmt/format.h>

#include <sys/syscall.h>
#include <unistd.h>

#include <stdexcept>

namespace corio::detail {

namespace {

void nop_complete(io_op* op, std::int32_t res, std::uint32_t, worker& w) noexcept {
  auto* s = static_cast<nop_state*>(op);
  s->res = res;
  s->trace.res = res;
  s->trace.reap_worker = static_cast<int>(w.index());
  if (s->with_tids) s->trace.reap_tid = current_tid();
  w.complete_op(op);
}

void resume_on_publish(deferred_action* a, worker& w) noexcept {
  auto* s = static_cast<resume_on_state*>(a);
  runtime_core& rt = w.runtime();
  worker& target = rt.worker_at(s->target % rt.worker_count());
  target.push_inbox(&s->node);
  rt.notify_worker(target, &w);
}

// Cancel actions (cancel.cpp step 3): on the owner worker, with the task's cancel lock held.

void cancel_sleep(wait_point* p, worker& w) noexcept {
  auto* t = static_cast<timer_node*>(p);
  t->cancelled = true;
  w.disarm_timer(t);
  end_wait_owner(t->node.task);
  w.schedule_local(&t->node);
}

void cancel_blocking(wait_point* p, worker& w) noexcept {
  auto* job = static_cast<blocking_job*>(p);
  // A job already running cannot be interrupted: its completion resumes the task.
  if (!w.runtime().blocking().try_remove(job)) return;
  job->cancelled = true;
  end_wait_owner(job->node.task);
  w.schedule_local(&job->node);
}

void blocking_publish(deferred_action* a, worker& w) noexcept {
  auto* job = static_cast<blocking_job*>(a);
  job->cancel = &cancel_blocking;
  if (!begin_wait(w, job->node.task, job, wait_kind::blocking)) {
    job->cancelled = true;
    w.schedule_local(&job->node);
    return;
  }
  try {
    w.runtime().blocking().submit(job);
  } catch (...) {
    job->error = std::current_exception();
    end_wait_owner(job->node.task);
    w.schedule_local(&job->node);
  }
}

}  // namespace

void resume_after_return(std::coroutine_handle<> h) noexcept {
  if (worker* w = current_worker()) {
    w->resume_next(h);
  } else {
    h.resume();  // no worker loop to return to: resume nested
  }
}

void suspend_yield(sched_node& node, std::coroutine_handle<> h) {
  worker& w = require_worker("yield_now()");
  node.handle = h;
  node.task = w.current_task();
  w.defer_yield(&node);
}

bool arm_timer(timer_node& t, std::coroutine_handle<> h) {
  worker& w = require_worker("sleep_for() / sleep_until()");
  t.node.handle = h;
  t.node.task = w.current_task();
  t.cancel = &cancel_sleep;
  if (t.deadline_ns <= steady_now_ns()) {
    if (is_cancelled(t.node.task)) {
      t.cancelled = true;
      return false;
    }
    w.defer_yield(&t.node);  // a deadline already passed: a yield, not a wait
    return true;
  }
  if (!begin_wait(w, t.node.task, &t, wait_kind::sleep)) {
    t.cancelled = true;
    return false;
  }
  w.arm_timer(&t);
  return true;
}

void after_wait(bool cancelled, const task_header* task) {
  if (cancelled || is_cancelled(task)) throw operation_cancelled();
}

void cancel_io_op(wait_point* p, worker& w) noexcept {
  auto* op = static_cast<io_op*>(p);
  op->cancelled = true;
  w.cancel_op(op);
}

bool submit_nop(nop_state& s, std::coroutine_handle<> h) {
  worker& w = require_worker("nop()");
  s.node.handle = h;
  s.node.task = w.current_task();
  s.on_cqe = &nop_complete;
  s.cancel = &cancel_io_op;
  if (!begin_wait(w, s.node.task, &s, wait_kind::nop)) {
    s.cancelled = true;
    s.res = -ECANCELED;
    return false;
  }
  s.trace.submit_worker = static_cast<int>(w.index());
  if (s.with_tids) s.trace.submit_tid = current_tid();
  io_uring_sqe* sqe = w.get_sqe();
  io_uring_prep_nop(sqe);
  io_uring_sqe_set_data(sqe, static_cast<io_op*>(&s));
  w.op_submitted(&s);
  return true;
}

bool submit_ring_timeout(ring_timeout_state& s, std::coroutine_handle<> h) {
  static_assert(sizeof(__kernel_timespec) == 2 * sizeof(long long));
  worker& w = require_worker("ring_timeout()");
  s.node.handle = h;
  s.node.task = w.current_task();
  s.cancel = &cancel_io_op;
  if (!begin_wait(w, s.node.task, &s, wait_kind::ring_timeout)) {
    s.cancelled = true;
    s.res = -ECANCELED;
    return false;
  }
  io_uring_sqe* sqe = w.get_sqe();
  io_uring_prep_timeout(sqe, reinterpret_cast<__kernel_timespec*>(&s.sec), 0, 0);
  io_uring_sqe_set_data(sqe, static_cast<io_op*>(&s));
  w.op_submitted(&s);
  return true;
}

int current_worker_index() noexcept {
  worker* w = current_worker();
  return w ? static_cast<int>(w->index()) : -1;
}

long current_tid() noexcept {
  return ::syscall(SYS_gettid);
}

void suspend_resume_on(resume_on_state& s, std::coroutine_handle<> h) {
  worker& w = require_worker("resume_on()");
  if (w.current_task() != nullptr && w.current_task()->pinned != nullptr) {
    throw std::logic_error("corio: resume_on() cannot move a task pinned by spawn_local");
  }
  s.node.handle = h;
  s.node.task = w.current_task();
  s.run = &resume_on_publish;
  w.defer(&s);
}

void submit_blocking(blocking_job& job, std::coroutine_handle<> h) {
  worker& w = require_worker("spawn_blocking()");
  job.node.handle = h;
  job.node.task = w.current_task();
  job.runtime = &w.runtime();
  job.run = &blocking_publish;
  w.defer(&job);
}

void complete_blocking(blocking_job& job) noexcept {
  end_wait_foreign(job.node.task, &job);
  job.runtime->schedule(&job.node);
}

void throw_blocking_cancelled() {
  throw operation_cancelled("corio: spawn_blocking cancelled before the job started");
}

void throw_op_cancelled() {
  throw operation_cancelled();
}

namespace {
void timeout_fired(timer_node* t, worker&) noexcept {
  auto* s = static_cast<timeout_scope*>(t->context);
  // The scope is alive: leaving it requires running on this worker (try_exit_timeout), and this
  // worker is busy here. The task is alive: it is inside the scope.
  try {
    cancel_scope_of(s->task, s);
  } catch (...) {
    std::terminate();
  }
}
constexpr timer_hooks timeout_hooks{&timeout_fired, nullptr};
}  // namespace

void enter_timeout(timeout_scope& s, std::int64_t deadline_ns) {
  worker& w = require_worker("timeout()");
  s.task = w.current_task();
  if (s.task == nullptr) throw std::logic_error("corio::timeout needs a task");
  enter_scope(s.task, &s);
  s.timer.deadline_ns = deadline_ns;
  s.timer.hooks = &timeout_hooks;
  s.timer.context = &s;
  if (deadline_ns <= steady_now_ns()) {
    s.cancelled.store(true, std::memory_order_release);  // already expired: no timer
  } else {
    w.arm_timer(&s.timer);
    s.timer_owner = &w;
  }
}

bool try_exit_timeout(timeout_scope& s) noexcept {
  if (s.task == nullptr) return true;
  worker* w = current_worker();
  if (s.timer_owner != nullptr && s.timer_owner != w) return false;
  if (s.timer_owner != nullptr) w->disarm_timer(&s.timer);
  exit_scope(s.task, &s);
  s.task = nullptr;
  return true;
}

void hop_to_timer(timeout_scope& s, resume_on_state& hop, std::coroutine_handle<> h) {
  worker& w = require_worker("timeout()");
  hop.node.handle = h;
  hop.node.task = w.current_task();
  hop.target = s.timer_owner->index();
  hop.run = &resume_on_publish;
  w.defer(&hop);
}

bool is_operation_cancelled(const std::exception_ptr& e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const operation_cancelled&) {
    return true;
  } catch (...) {
    return false;
  }
}

void throw_join_interrupted() {
  throw operation_cancelled("corio: the joining task was cancelled (the joined task goes on)");
}

void throw_empty_task() {
  throw std::logic_error("corio: awaited an empty task (default-constructed or moved from)");
}

void throw_empty_join_handle() {
  throw std::logic_error("corio: awaited an empty join_handle (already joined, detached or moved)");
}

void throw_join_cancelled(std::uint64_t id) {
  throw std::system_error(ECANCELED, std::generic_category(),
                          fmt::format("corio: task {} was cancelled before it finished", id));
}

}  // namespace corio::detail
