// The out-of-line halves of the awaiters in the public headers. Each reads the current worker
// afresh (context.hpp), on the thread that is suspending the coroutine.
#include "context.hpp"
#include "runtime_core.hpp"
#include "task_header.hpp"
#include "worker.hpp"

#include <corio/blocking.hpp>
#include <corio/detail/diagnostics.hpp>
#include <corio/time.hpp>
#include <corio/yield.hpp>

#include <fmt/format.h>

#include <sys/syscall.h>
#include <unistd.h>

#include <stdexcept>

namespace corio::detail {

namespace {

worker& require_worker(const char* what) {
  worker* w = current_worker();
  if (w == nullptr) {
    throw std::logic_error(fmt::format(
        "corio: {} can only be awaited by a task running on a corio runtime worker", what));
  }
  return *w;
}

void nop_complete(io_op* op, std::int32_t res, std::uint32_t) noexcept {
  auto* s = static_cast<nop_state*>(op);
  worker* w = current_worker();
  s->res = res;
  s->trace.res = res;
  s->trace.reap_worker = static_cast<int>(w->index());
  if (s->with_tids) s->trace.reap_tid = current_tid();
  w->complete_op(op);
}

void resume_on_publish(deferred_action* a, worker& w) noexcept {
  auto* s = static_cast<resume_on_state*>(a);
  runtime_core& rt = w.runtime();
  worker& target = rt.worker_at(s->target % rt.worker_count());
  target.push_inbox(&s->node);
  rt.notify_worker(target, &w);
}

void blocking_publish(deferred_action* a, worker& w) noexcept {
  auto* job = static_cast<blocking_job*>(a);
  try {
    w.runtime().blocking().submit(job);
  } catch (...) {
    job->error = std::current_exception();
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

void arm_timer(timer_node& t, std::coroutine_handle<> h) {
  worker& w = require_worker("sleep_for() / sleep_until()");
  t.node.handle = h;
  t.node.task = w.current_task();
  w.arm_timer(&t);
}

void submit_nop(nop_state& s, std::coroutine_handle<> h) {
  worker& w = require_worker("nop()");
  s.node.handle = h;
  s.node.task = w.current_task();
  s.on_cqe = &nop_complete;
  s.trace.submit_worker = static_cast<int>(w.index());
  if (s.with_tids) s.trace.submit_tid = current_tid();
  io_uring_sqe* sqe = w.get_sqe();
  io_uring_prep_nop(sqe);
  io_uring_sqe_set_data(sqe, static_cast<io_op*>(&s));
  w.op_submitted(&s);
}

void submit_ring_timeout(ring_timeout_state& s, std::coroutine_handle<> h) {
  static_assert(sizeof(__kernel_timespec) == 2 * sizeof(long long));
  worker& w = require_worker("ring_timeout()");
  s.node.handle = h;
  s.node.task = w.current_task();
  io_uring_sqe* sqe = w.get_sqe();
  io_uring_prep_timeout(sqe, reinterpret_cast<__kernel_timespec*>(&s.sec), 0, 0);
  io_uring_sqe_set_data(sqe, static_cast<io_op*>(&s));
  w.op_submitted(&s);
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
  job.runtime->schedule(&job.node);
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
