// corio::condition_variable.
//
// cv.wait(g) is a small coroutine with two waits in sequence:
//  1. The notification wait (notify_wait, cancellable). Its attempt never succeeds; its enroll,
//     run by the wait machinery under the cv's lock once the coroutine has suspended, links the
//     waiter and then releases the mutex -- still under the cv's lock. A notifier that changes
//     the condition under the mutex and then notifies therefore finds the waiter enrolled: no
//     lost wake-up. notify_one/notify_all claim and wake under the cv's lock; a waiter cancelled
//     meanwhile loses the claim and the notification goes to the next one.
//     If the task was cancelled before it could enroll, the mutex was never released.
//  2. If the mutex was released, re-acquiring it (a mutex::lock_awaiter that is not cancellable,
//     so that the guard owns the mutex again however the wait ends). The mutex hands itself over
//     in FIFO order like to any other waiter.
// Then the wait returns, or throws operation_cancelled if step 1 was cancelled.
//
// Ownership of the mutex during the wait: the caller's guard still points at it, but from step
// 1's enroll to the end of step 2 the mutex is free or someone else's. relock_state records that
// window; if the frame is destroyed inside it (shutdown), it empties the guard, so the guard's
// destructor does not unlock a mutex it no longer owns. (A step-2 awaiter destroyed after the
// mutex was handed to it gives the mutex back itself: mutex.cpp.)
#include <corio/error.hpp>
#include <corio/sync/condition_variable.hpp>

#include <mutex>
#include <stdexcept>

namespace corio {

class condition_variable::notify_wait : public detail::simple_wait {
 public:
  notify_wait(condition_variable& cv, mutex& m, bool& released) noexcept
      : cv_(cv), mutex_(m), released_(released) {
    lock = &cv.lock_;
    simple_wait::attempt = &condition_variable::attempt;
    simple_wait::what = "condition_variable wait";
    simple_wait::enroll = &condition_variable::enroll;
  }
  bool await_ready() noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) { return suspend(h); }
  /// True if notified, false if cancelled (then unlinked).
  bool await_resume() noexcept { return finish(); }

  condition_variable& cv_;
  mutex& mutex_;
  bool& released_;  // in the waiting frame: set once enroll released the mutex
};

// Empties the caller's guard if the frame is destroyed while the mutex is not re-held.
struct condition_variable::relock_state {
  mutex::guard* guard;
  bool released = false;
  ~relock_state() {
    if (released) disown(*guard);
  }
};

bool condition_variable::attempt(detail::simple_wait*) noexcept {
  return false;  // a wait always waits for a notification made after it began
}

void condition_variable::enroll(detail::simple_wait* w) noexcept {
  auto* n = static_cast<notify_wait*>(w);
  n->cv_.waiters_.push_back(w);
  n->released_ = true;
  n->mutex_.unlock();  // under the cv's lock: see the file comment
}

task<> condition_variable::wait(mutex::guard& g) {
  if (!g.owns_lock()) {
    throw std::logic_error("corio::condition_variable::wait: the guard does not own a mutex");
  }
  mutex& m = *g.m_;
  relock_state state{&g};
  bool notified = false;
  {
    notify_wait w(*this, m, state.released);
    notified = co_await w;
  }
  if (state.released) {
    mutex::lock_awaiter relock(m, /*cancellable=*/false);
    mutex::guard again = co_await relock;
    disown(again);  // the caller's guard owns it
    state.released = false;
  }
  if (!notified) throw operation_cancelled();
}

void condition_variable::notify_one() noexcept {
  std::lock_guard g(lock_);
  if (detail::waiter* w = waiters_.pop_claimed()) detail::wake(*w->target);
}

void condition_variable::notify_all() noexcept {
  std::lock_guard g(lock_);
  while (detail::waiter* w = waiters_.pop_claimed()) detail::wake(*w->target);
}

}  // namespace corio
