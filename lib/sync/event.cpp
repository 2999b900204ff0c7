// corio::event. Invariant (under the lock): while set_ is true, no live waiter is enrolled --
// a wait finds set_ under the lock before enrolling, and set() wakes every enrolled waiter in the
// same critical section that sets it.
#include <corio/error.hpp>
#include <corio/sync/event.hpp>

#include <mutex>

namespace corio {

event::wait_awaiter::wait_awaiter(event& e) noexcept : event_(e) {
  lock = &e.lock_;
  simple_wait::attempt = &event::attempt;
  simple_wait::what = "event wait";
  simple_wait::enroll = &event::enroll;
}

void event::wait_awaiter::await_resume() {
  if (!finish()) throw operation_cancelled();
}

bool event::attempt(detail::simple_wait* w) noexcept {
  return static_cast<wait_awaiter*>(w)->event_.set_;
}

void event::enroll(detail::simple_wait* w) noexcept {
  static_cast<wait_awaiter*>(w)->event_.waiters_.push_back(w);
}

void event::set() noexcept {
  std::lock_guard g(lock_);
  set_ = true;
  while (detail::waiter* w = waiters_.pop_claimed()) detail::wake(*w->target);
}

void event::reset() noexcept {
  std::lock_guard g(lock_);
  set_ = false;
}

bool event::is_set() const noexcept {
  std::lock_guard g(lock_);
  return set_;
}

void event::wait_blocking() {
  wait_awaiter a(*this);
  a.block();
}

}  // namespace corio
