// corio::semaphore. Invariant (under the lock): count_ > 0 only if no live waiter is enrolled,
// since release() hands permits to waiters before it adds to the count.
#include <corio/error.hpp>
#include <corio/sync/semaphore.hpp>

#include <mutex>

namespace corio {

semaphore::acquire_awaiter::acquire_awaiter(semaphore& s) noexcept : sem_(s) {
  lock = &s.lock_;
  simple_wait::attempt = &semaphore::attempt;
  simple_wait::what = "semaphore acquire";
  simple_wait::enroll = &semaphore::enroll;
}

void semaphore::acquire_awaiter::await_resume() {
  if (!finish()) throw operation_cancelled();
}

bool semaphore::attempt(detail::simple_wait* w) noexcept {
  semaphore& s = static_cast<acquire_awaiter*>(w)->sem_;
  if (s.count_ == 0) return false;
  --s.count_;
  return true;
}

void semaphore::enroll(detail::simple_wait* w) noexcept {
  static_cast<acquire_awaiter*>(w)->sem_.waiters_.push_back(w);
}

bool semaphore::try_acquire() noexcept {
  std::lock_guard g(lock_);
  if (count_ == 0) return false;
  --count_;
  return true;
}

void semaphore::acquire_blocking() {
  acquire_awaiter a(*this);
  a.block();
}

void semaphore::release(std::size_t n) noexcept {
  std::lock_guard g(lock_);
  for (; n > 0; --n) {
    detail::waiter* w = waiters_.pop_claimed();
    if (w == nullptr) break;
    detail::wake(*w->target);  // the permit is the waiter's now
  }
  count_ += n;
}

std::size_t semaphore::available() const noexcept {
  std::lock_guard g(lock_);
  return count_;
}

}  // namespace corio
