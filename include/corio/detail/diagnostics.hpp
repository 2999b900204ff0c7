// Internal awaitables for tests and benchmarks: a ring NOP that reports where it ran, and an
// explicit move of the current task to another worker.
#pragma once

#include <corio/detail/io_op.hpp>

#include <cerrno>
#include <coroutine>

namespace corio::detail {

/// Where a NOP was submitted and reaped: worker indexes and kernel thread ids.
struct nop_trace {
  int res = 0;
  int submit_worker = -1;
  long submit_tid = 0;
  int reap_worker = -1;
  long reap_tid = 0;
};

struct nop_state : io_op {
  nop_trace trace;
  bool with_tids = false;  // also record kernel thread ids (two gettid system calls)
};

/// Prepares an IORING_OP_NOP on the current worker's ring (read afresh from the calling thread).
/// Returns false, without suspending, if the task was cancelled (`s.cancelled` is then set).
bool submit_nop(nop_state& s, std::coroutine_handle<> h);
[[noreturn]] void throw_op_cancelled();

/// `co_await nop()`: one round trip through the current worker's ring; the trace has worker
/// indexes. `co_await traced_nop()` also records the kernel thread ids (for tests; slower).
class nop_op {
 public:
  explicit nop_op(bool with_tids = false) noexcept { s_.with_tids = with_tids; }
  nop_op(const nop_op&) = delete;
  nop_op& operator=(const nop_op&) = delete;
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) { return submit_nop(s_, h); }
  nop_trace await_resume() const {
    if (s_.cancelled && s_.res == -ECANCELED) throw_op_cancelled();
    return s_.trace;
  }

 private:
  nop_state s_;
};
[[nodiscard]] inline nop_op nop() noexcept {
  return nop_op(false);
}
[[nodiscard]] inline nop_op traced_nop() noexcept {
  return nop_op(true);
}

/// `co_await ring_timeout(ns)`: an IORING_OP_TIMEOUT on the current worker's ring, an operation
/// that stays in flight for `ns` nanoseconds. Returns -ETIME when it expired, -ECANCELED when it
/// was cancelled (shutdown cancels it and reaps it before the frame is destroyed).
struct ring_timeout_state : io_op {
  long long sec = 0;  // a __kernel_timespec the kernel reads at submission
  long long nsec = 0;
};
bool submit_ring_timeout(ring_timeout_state& s, std::coroutine_handle<> h);
class ring_timeout_op {
 public:
  explicit ring_timeout_op(long long ns) noexcept {
    s_.sec = ns / 1'000'000'000;
    s_.nsec = ns % 1'000'000'000;
  }
  ring_timeout_op(const ring_timeout_op&) = delete;
  ring_timeout_op& operator=(const ring_timeout_op&) = delete;
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) { return submit_ring_timeout(s_, h); }
  int await_resume() const {
    if (s_.cancelled && s_.res == -ECANCELED) throw_op_cancelled();
    return s_.res;
  }

 private:
  ring_timeout_state s_;
};
[[nodiscard]] inline ring_timeout_op ring_timeout(long long ns) noexcept {
  return ring_timeout_op(ns);
}

/// The index of the worker running the calling thread, or -1 off a worker. Out of line, so a
/// coroutine cannot cache it across a suspension.
int current_worker_index() noexcept;

/// The calling thread's kernel thread id (gettid); never cached by the compiler.
long current_tid() noexcept;

/// `co_await resume_on(i)` moves the current task to worker `i` (modulo the worker count) and
/// resumes it there. Throws std::logic_error for a task pinned by spawn_local.
struct resume_on_state : deferred_action {
  sched_node node;
  unsigned target = 0;
};
void suspend_resume_on(resume_on_state& s, std::coroutine_handle<> h);
class resume_on_op {
 public:
  explicit resume_on_op(unsigned worker) noexcept { s_.target = worker; }
  resume_on_op(const resume_on_op&) = delete;
  resume_on_op& operator=(const resume_on_op&) = delete;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) { suspend_resume_on(s_, h); }
  void await_resume() const noexcept {}

 private:
  resume_on_state s_;
};
[[nodiscard]] inline resume_on_op resume_on(unsigned worker) noexcept {
  return resume_on_op(worker);
}

}  // namespace corio::detail
