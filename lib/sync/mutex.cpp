// corio::mutex.
//
// State, all under lock_: `locked_` and the FIFO of waiters.
//
// Invariant: if locked_ is false, no live waiter is enrolled. A waiter enrolls only after its
// attempt found the mutex locked, and unlock clears locked_ only when it found no live waiter to
// hand the mutex to. So an attempt (lock, try_lock) that finds locked_ false barges past nobody.
//
// Ownership: the mutex is owned by exactly one of
//   - a guard (made by await_resume, try_lock or lock_blocking);
//   - a lock_awaiter whose target a waker claimed (unlock handed the mutex over) or whose own
//     attempt succeeded, until await_resume turns it into a guard. If the frame is destroyed
//     before that (shutdown), the awaiter's destructor unlocks: ownership is never lost;
//   - a condition_variable wait re-acquiring it (a guard it does not hand out: condition_variable).
// A cancelled waiter owns nothing: the cancel action and unlock both claim the target, and only
// one wins; an unlock that loses moves on to the next waiter.
#include <corio/error.hpp>
#include <corio/sync/mutex.hpp>

#include <mutex>

namespace corio {

mutex::lock_awaiter::lock_awaiter(mutex& m, bool cancellable) noexcept : mutex_(m) {
  lock = &m.lock_;
  simple_wait::attempt = &mutex::attempt;
  simple_wait::what = "mutex lock";
  simple_wait::enroll = &mutex::enroll;
  simple_wait::cancellable = cancellable;
}

mutex::lock_awaiter::~lock_awaiter() {
  if (taken_) return;
  std::lock_guard g(mutex_.lock_);
  if (waiter::linked) {
    waiter::list->remove(this);
  } else if (outcome() == 0) {
    // Handed over (or taken by our own attempt) but never resumed: the frame is being destroyed.
    // The claim was made under lock_, which we hold, so outcome() is final here.
    mutex_.unlock_locked();
  }
}

mutex::guard mutex::lock_awaiter::await_resume() {
  if (!finish()) throw operation_cancelled();
  taken_ = true;
  return guard(&mutex_);
}

bool mutex::attempt(detail::simple_wait* w) noexcept {
  mutex& m = static_cast<lock_awaiter*>(w)->mutex_;
  if (m.locked_) return false;
  m.locked_ = true;
  return true;
}

void mutex::enroll(detail::simple_wait* w) noexcept {
  static_cast<lock_awaiter*>(w)->mutex_.waiters_.push_back(w);
}

mutex::guard mutex::try_lock() noexcept {
  std::lock_guard g(lock_);
  if (locked_) return guard();
  locked_ = true;
  return guard(this);
}

mutex::guard mutex::lock_blocking() {
  lock_awaiter a(*this);
  a.block();
  a.taken_ = true;
  return guard(this);
}

void mutex::unlock() noexcept {
  std::lock_guard g(lock_);
  unlock_locked();
}

void mutex::unlock_locked() noexcept {
  if (detail::waiter* w = waiters_.pop_claimed()) {
    detail::wake(*w->target);  // the mutex is the waiter's now: locked_ stays true
    return;
  }
  locked_ = false;
}

}  // namespace corio
