// corio::select's protocol (select.hpp, select_state).
#include <corio/select.hpp>

#include "../context.hpp"
#include "../task_header.hpp"
#include "../worker.hpp"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <stdexcept>

namespace corio::detail {

namespace {

// Cancel action of the select's wait (cancel.cpp step 3), on the owner under the task's cancel
// lock: claims the target unless a branch won first. The enrolling side has arrived already
// (the wait point is registered in the same step, and the owner is busy until it is over).
void cancel_select(wait_point* p, worker& w) noexcept {
  auto* st = static_cast<select_state*>(p);
  if (!st->claim(wait_target::cancelled_state)) return;
  st->cancelled = true;
  if (st->arrivals.fetch_add(1, std::memory_order_acq_rel) == 0) return;
  end_wait_owner(st->node.task);
  w.schedule_local(&st->node);
}

// The enrolling side's arrival (step 3).
void arrive(select_state& st, worker& w, bool registered) noexcept {
  if (st.arrivals.fetch_add(1, std::memory_order_acq_rel) == 0) return;
  if (registered) end_wait_owner(st.node.task);
  w.schedule_local(&st.node);
}

unsigned next_start(unsigned n) noexcept {
  // A per-thread xorshift: the start of the scan when several channel branches are ready.
  thread_local unsigned x = 0x9e3779b9u;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return n == 0 ? 0 : x % n;
}

// Step 2, on the worker once the select has suspended.
void enroll_select(deferred_action* a, worker& w) noexcept {
  auto* st = static_cast<select_state*>(a);
  st->lock_all();
  if (st->outcome() != wait_target::pending) {  // a child won already
    st->unlock_all();
    arrive(*st, w, false);
    return;
  }
  unsigned n = static_cast<unsigned>(st->native_count);
  unsigned first = next_start(n);
  for (unsigned k = 0; k < n; ++k) {
    native_ops& o = st->natives[(first + k) % n];
    // Under every native lock, nobody else can claim the target: no branch is enrolled yet and
    // children claim under the same locks; the claim only records the winner.
    bool done = false;
    try {
      done = o.try_now(o.obj, st);
    } catch (...) {
      done = false;  // cannot happen for channels (nothrow moves); treated as not ready
    }
    if (done) {
      (void)st->claim(o.index);
      st->unlock_all();
      st->arrivals.fetch_add(1, std::memory_order_relaxed);  // the decider's arrival
      arrive(*st, w, false);
      return;
    }
  }
  st->cancel = &cancel_select;
  if (!begin_wait(w, st->node.task, st, wait_kind::select)) {
    // Without native locks a child may claim concurrently; only a successful claim arrives.
    bool decided = st->claim(wait_target::cancelled_state);
    st->unlock_all();
    if (decided) st->arrivals.fetch_add(1, std::memory_order_relaxed);
    arrive(*st, w, false);
    return;
  }
  for (unsigned k = 0; k < n; ++k) {
    native_ops& o = st->natives[k];
    o.enroll(o.obj, st, o.index);
  }
  st->unlock_all();
  arrive(*st, w, true);
}

}  // namespace

void select_state::lock_all() noexcept {
  for (int i = 0; i < lock_count; ++i) locks[i]->lock();
}

void select_state::unlock_all() noexcept {
  for (int i = lock_count; i-- > 0;) locks[i]->unlock();
}

bool select_state::child_decides(int branch) noexcept {
  lock_all();
  bool won = claim(branch);
  // Wake under the locks: the select's cleanup takes them, so it cannot run ahead of us.
  if (won) wake(*this);
  unlock_all();
  return won;
}

void select_state::child_finished() noexcept {
  std::lock_guard g(children_lock);
  if (--children == 0) {
    if (waiter* w = children_waiters.pop_claimed()) wake(*w->target);
  }
}

void select_state::unlink_all() noexcept {
  for (int i = 0; i < native_count; ++i) {
    native_ops& o = natives[i];
    std::lock_guard g(*o.lock);
    o.unlink(o.obj);
  }
  // With no native branch, a child that decided woke us without a lock: it is still running
  // (children_wait waits for it), so nothing more to synchronize here.
}

void select_wait::await_suspend(std::coroutine_handle<> h) {
  worker* w = current_worker();
  if (w == nullptr) throw std::logic_error("corio::select must be awaited by a task on a worker");
  st.node.handle = h;
  st.node.task = w->current_task();
  st.run = &enroll_select;
  w->defer(&st);
}

children_wait::children_wait(select_state& st) noexcept : st_(st) {
  lock = &st.children_lock;
  attempt = &attempt_fn;
  what = "select: its branches finishing";
  enroll = &enroll_fn;
  cancellable = false;
}

bool children_wait::attempt_fn(simple_wait* self) noexcept {
  return static_cast<children_wait*>(self)->st_.children == 0;
}

void children_wait::enroll_fn(simple_wait* self) noexcept {
  auto* c = static_cast<children_wait*>(self);
  c->st_.children_waiters.push_back(c);
}

int collect_locks(native_ops* natives, int n, spin_lock** out) noexcept {
  int count = 0;
  for (int i = 0; i < n; ++i) {
    spin_lock* l = natives[i].lock;
    if (std::find(out, out + count, l) == out + count) out[count++] = l;
  }
  std::sort(out, out + count);  // one global order: by address
  return count;
}

void throw_select_cancelled() {
  throw operation_cancelled();
}

}  // namespace corio::detail
