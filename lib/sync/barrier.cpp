// corio::barrier.
//
// State, under lock_: `arrived_`, the arrivals of the current phase that wait, and the list of
// their enrollments. Invariant: arrived_ equals the number of enrollments linked in waiters_
// (a cancelled waiter's enrollment stays linked, and counted, until it withdraws), and is below
// participants_.
//
// An arrival (attempt, under the lock) completes the phase if it is the last one missing:
// generation_ advances, arrived_ goes back to zero and every enrollment is unlinked, each live one
// claimed and woken. An arrival that does not complete it enrolls (++arrived_).
//
// A cancelled waiter, when it resumes, looks under the lock whether it is still linked:
//  - yes: the phase is still open; it unlinks and --arrived_ (withdraws), and throws;
//  - no: the phase completed, counting its arrival while the cancel action had already claimed
//    it; the others went on with it, so it returns normally rather than deny an arrival they used.
// Nothing else unlinks an enrollment (no purging), so "no longer linked" means exactly that.
#include <corio/error.hpp>
#include <corio/sync/barrier.hpp>

#include <mutex>
#include <stdexcept>

namespace corio {

barrier::barrier(std::size_t participants) : participants_(participants) {
  if (participants == 0) throw std::invalid_argument("corio::barrier needs at least 1 participant");
}

barrier::arrive_awaiter::arrive_awaiter(barrier& b) noexcept : barrier_(b) {
  lock = &b.lock_;
  simple_wait::attempt = &barrier::attempt;
  simple_wait::what = "barrier arrive_and_wait";
  simple_wait::enroll = &barrier::enroll;
}

barrier::arrive_awaiter::~arrive_awaiter() {
  if (!enrolled_) return;
  std::lock_guard g(barrier_.lock_);
  if (waiter::linked) {
    waiter::list->remove(this);
    --barrier_.arrived_;
  }
}

bool barrier::arrive_awaiter::await_resume() {
  if (outcome() >= 0) return leader_;
  if (!enrolled_) throw operation_cancelled();  // cancelled before arriving: nothing counted
  {
    std::lock_guard g(barrier_.lock_);
    if (!waiter::linked) return false;  // the phase completed with this arrival
    waiter::list->remove(this);
    --barrier_.arrived_;
  }
  throw operation_cancelled();
}

bool barrier::attempt(detail::simple_wait* w) noexcept {
  auto* a = static_cast<arrive_awaiter*>(w);
  barrier& b = a->barrier_;
  if (b.arrived_ + 1 < b.participants_) return false;
  ++b.generation_;
  b.arrived_ = 0;
  while (detail::waiter* x = b.waiters_.front()) {
    b.waiters_.remove(x);
    // A target claimed by its cancel action resumes, finds itself unlinked, and returns normally.
    if (x->target->claim(x->branch)) detail::wake(*x->target);
  }
  a->leader_ = true;
  return true;
}

void barrier::enroll(detail::simple_wait* w) noexcept {
  auto* a = static_cast<arrive_awaiter*>(w);
  ++a->barrier_.arrived_;
  a->enrolled_ = true;
  a->barrier_.waiters_.push_back(w);
}

bool barrier::arrive_and_wait_blocking() {
  arrive_awaiter a(*this);
  a.block();
  return a.leader_;
}

std::uint64_t barrier::generation() const noexcept {
  std::lock_guard g(lock_);
  return generation_;
}

}  // namespace corio
