// Which runtime and worker the calling thread belongs to.
//
// Coroutines migrate between threads, and compilers cache the address of a thread_local across a
// co_await (coio-rs#56). So nothing in a coroutine body or an inlined awaiter reads these
// thread-locals: awaiters call out-of-line library functions, which call current_worker(), which
// is never inlined and so reads the variable afresh on the thread that runs it.
#pragma once

namespace corio::detail {

class worker;
class runtime_core;

/// The worker running on this thread, or nullptr.
[[gnu::noinline]] worker* current_worker() noexcept;
/// The runtime this thread belongs to: a worker's, or the one a blocking-pool thread serves.
[[gnu::noinline]] runtime_core* current_runtime() noexcept;

[[noreturn, gnu::cold]] void throw_not_on_worker(const char* what);
/// The calling thread's worker, for an awaiter that must suspend on one: throws std::logic_error
/// naming `what` (the awaitable, "nop()") off a worker. Inline, so the check costs a test: the
/// thread-local itself is still read out of line.
inline worker& require_worker(const char* what) {
  worker* w = current_worker();
  if (w == nullptr) [[unlikely]]
    throw_not_on_worker(what);
  return *w;
}

/// Sets (or clears) both for the calling thread; returns the previous values through the guard.
class thread_context {
 public:
  thread_context(runtime_core* rt, worker* w) noexcept;
  ~thread_context();
  thread_context(const thread_context&) = delete;
  thread_context& operator=(const thread_context&) = delete;

 private:
  runtime_core* prev_rt_;
  worker* prev_worker_;
};

}  // namespace corio::detail
