// corio::wait_group. Invariant (under the lock): while count_ == 0, no live waiter is enrolled --
// a wait finds count_ == 0 under the lock before enrolling, and the add() that brings count_ to
// zero wakes every enrolled waiter in the same critical section.
#include <corio/error.hpp>
#include <corio/sync/wait_group.hpp>

#include <fmt/format.h>

#include <mutex>
#include <stdexcept>

namespace corio {

wait_group::wait_awaiter::wait_awaiter(wait_group& g) noexcept : group_(g) {
  lock = &g.lock_;
  simple_wait::attempt = &wait_group::attempt;
  simple_wait::what = "wait_group wait";
  simple_wait::enroll = &wait_group::enroll;
}

void wait_group::wait_awaiter::await_resume() {
  if (!finish()) throw operation_cancelled();
}

bool wait_group::attempt(detail::simple_wait* w) noexcept {
  return static_cast<wait_awaiter*>(w)->group_.count_ == 0;
}

void wait_group::enroll(detail::simple_wait* w) noexcept {
  static_cast<wait_awaiter*>(w)->group_.waiters_.push_back(w);
}

void wait_group::add(std::ptrdiff_t n) {
  std::ptrdiff_t was = 0;
  {
    std::lock_guard g(lock_);
    if (count_ + n >= 0) {  // count_ >= 0: no overflow for negative n
      count_ += n;
      if (count_ == 0) {
        while (detail::waiter* w = waiters_.pop_claimed()) detail::wake(*w->target);
      }
      return;
    }
    was = count_;
  }
  throw std::logic_error(
      fmt::format("corio::wait_group: add({}) with the counter at {} would take it below zero; "
                  "done() was called more times than add() counted",
                  n, was));
}

void wait_group::done() {
  add(-1);
}

std::size_t wait_group::count() const noexcept {
  std::lock_guard g(lock_);
  return static_cast<std::size_t>(count_);
}

void wait_group::wait_blocking() {
  wait_awaiter a(*this);
  a.block();
}

}  // namespace corio
