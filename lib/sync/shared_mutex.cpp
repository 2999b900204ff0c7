// corio::shared_mutex.
//
// State, all under lock_: `writer_`, `readers_`, and one FIFO of waiters of both kinds.
//
// Invariant (after every critical section): the first live waiter in the queue cannot be granted
// now -- it is a writer and the lock is held, or a reader and a writer holds it. grant_locked()
// restores it: it drops dead enrollments (cancelled waits) from the front, then grants from the
// front while it can (a writer alone, or a run of readers), claiming each target under lock_ and
// completing its operation (writer_ = true or ++readers_) before waking it.
//
// Everything that can make the front grantable calls it:
//  - unlock and unlock_shared (the lock became free or less held);
//  - a cancelled waiter, when it resumes and withdraws: a cancelled writer may have been all that
//    held the readers behind it back; a frame destroyed while waiting does the same;
//  - every attempt, first: between a cancellation and the cancelled waiter's resumption the dead
//    enrollment still sits at the front, and a new request must neither overtake the live waiters
//    behind it nor wait behind nobody.
// With the invariant, an attempt succeeds exactly when the queue is empty and the lock is free
// enough: a request never overtakes a live waiter (fairness), and never waits needlessly.
//
// Ownership: as for corio::mutex, a claimed waiter owns what grant_locked gave it until
// await_resume makes a guard; a frame destroyed before (shutdown) gives it back in ~wait_op.
#include <corio/error.hpp>
#include <corio/sync/shared_mutex.hpp>

#include <mutex>

namespace corio {

shared_mutex::wait_op::wait_op(shared_mutex& m, bool exclusive) noexcept
    : mutex_(m), exclusive_(exclusive) {
  lock = &m.lock_;
  simple_wait::attempt = &shared_mutex::attempt;
  simple_wait::enroll = &shared_mutex::enroll;
  simple_wait::what = exclusive ? "shared_mutex lock" : "shared_mutex lock_shared";
}

shared_mutex::wait_op::~wait_op() {
  if (taken_) return;
  std::lock_guard g(mutex_.lock_);
  if (waiter::linked) {
    waiter::list->remove(this);
  } else if (outcome() == 0) {
    // Granted but never resumed: the frame is being destroyed. outcome() is final under lock_.
    if (exclusive_) {
      mutex_.writer_ = false;
    } else {
      --mutex_.readers_;
    }
  } else {
    return;  // cancelled and already withdrawn by take(), or never waited
  }
  mutex_.grant_locked();
}

bool shared_mutex::wait_op::take() noexcept {
  if (outcome() >= 0) {
    taken_ = true;
    return true;
  }
  std::lock_guard g(mutex_.lock_);
  if (waiter::linked) waiter::list->remove(this);
  mutex_.grant_locked();
  return false;
}

shared_mutex::guard shared_mutex::lock_awaiter::await_resume() {
  if (!take()) throw operation_cancelled();
  return guard(&mutex_);
}

shared_mutex::shared_guard shared_mutex::lock_shared_awaiter::await_resume() {
  if (!take()) throw operation_cancelled();
  return shared_guard(&mutex_);
}

void shared_mutex::grant_locked() noexcept {
  while (detail::waiter* w = waiters_.front()) {
    auto* op = static_cast<wait_op*>(static_cast<detail::simple_wait*>(w));
    if (w->target->outcome() == detail::wait_target::pending) {
      if (writer_ || (op->exclusive_ && readers_ != 0)) return;  // the front must wait
      if (w->target->claim(w->branch)) {
        waiters_.remove(w);
        if (op->exclusive_) {
          writer_ = true;
        } else {
          ++readers_;
        }
        detail::wake(*w->target);  // what we granted is the waiter's now
        continue;
      }
    }
    waiters_.remove(w);  // its wait ended otherwise (cancelled): its owner finds it unlinked
  }
}

bool shared_mutex::can_take_locked(bool exclusive) noexcept {
  grant_locked();
  if (!waiters_.empty() || writer_) return false;
  return !exclusive || readers_ == 0;
}

bool shared_mutex::attempt(detail::simple_wait* w) noexcept {
  auto* op = static_cast<wait_op*>(w);
  shared_mutex& m = op->mutex_;
  if (!m.can_take_locked(op->exclusive_)) return false;
  if (op->exclusive_) {
    m.writer_ = true;
  } else {
    ++m.readers_;
  }
  return true;
}

void shared_mutex::enroll(detail::simple_wait* w) noexcept {
  static_cast<wait_op*>(w)->mutex_.waiters_.push_back(w);
}

shared_mutex::guard shared_mutex::try_lock() noexcept {
  std::lock_guard g(lock_);
  if (!can_take_locked(true)) return guard();
  writer_ = true;
  return guard(this);
}

shared_mutex::shared_guard shared_mutex::try_lock_shared() noexcept {
  std::lock_guard g(lock_);
  if (!can_take_locked(false)) return shared_guard();
  ++readers_;
  return shared_guard(this);
}

shared_mutex::guard shared_mutex::lock_blocking() {
  lock_awaiter a(*this);
  a.block();
  a.taken_ = true;
  return guard(this);
}

shared_mutex::shared_guard shared_mutex::lock_shared_blocking() {
  lock_shared_awaiter a(*this);
  a.block();
  a.taken_ = true;
  return shared_guard(this);
}

void shared_mutex::unlock() noexcept {
  std::lock_guard g(lock_);
  writer_ = false;
  grant_locked();
}

void shared_mutex::unlock_shared() noexcept {
  std::lock_guard g(lock_);
  --readers_;
  grant_locked();
}

}  // namespace corio
