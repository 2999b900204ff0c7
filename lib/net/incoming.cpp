// incoming(): one multishot accept feeding a queue of connections and a FIFO of waiters.
//
// Ownership: the user's incoming_connections object holds one reference to the state; the
// "machinery" holds another while it is active -- a multishot accept in flight on the owner
// worker's ring, or a back-off timer armed on it. The state is freed when both are gone; fds
// still queued then are closed.
//
// Threads: the multishot CQEs and the back-off timer run on the owner worker (the one where the
// first next() armed it). next() and the user's release run on any worker. Everything shared is
// guarded by `m`; the only lock nesting is task-lock -> m, in the cancel action of a waiter
// (cancel.cpp); every other path releases `m` before touching a task's lock.
//
// No connection is lost or leaked: an accepted fd goes to the first waiter or to the queue; a
// waiter cancelled meanwhile is taken off the list under `m`, so exactly one of "handed an fd" and
// "cancelled" happens to it; fds accepted while shutting down or after the user dropped the
// object are closed.
#include "../cancel.hpp"
#include "../context.hpp"
#include "../runtime_core.hpp"
#include "../task_header.hpp"
#include "../worker.hpp"

#include <corio/net/incoming.hpp>

#include <fmt/format.h>

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <mutex>
#include <utility>

namespace corio::net::detail {

using corio::detail::deferred_action;
using corio::detail::io_op;
using corio::detail::timer_node;
using corio::detail::wait_point;
using corio::detail::worker;

struct incoming_state {
  enum class phase : std::uint8_t { idle, accepting, backing_off };

  struct accept_op : io_op {
    incoming_state* st = nullptr;
  };

  std::mutex m;
  std::deque<int> ready;  // accepted, not yet taken
  incoming_waiter* head = nullptr;
  incoming_waiter* tail = nullptr;
  int error = 0;          // accepting failed for good
  bool ended = false;     // the listener was closed
  bool dropping = false;  // the user's object is gone
  phase state = phase::idle;
  worker* owner = nullptr;
  int backoff_ms = 0;

  struct stop_message : deferred_action {
    incoming_state* st = nullptr;
  };

  fd_owner* listener = nullptr;
  accept_op op;
  timer_node backoff;
  stop_message stop;         // posted to the owner when the user drops the object while active
  std::atomic<int> refs{1};  // the user's object, the active machinery, each registered waiter

  void push(incoming_waiter* w) noexcept {
    w->next = nullptr;
    if (tail) {
      tail->next = w;
    } else {
      head = w;
    }
    tail = w;
  }
  incoming_waiter* pop() noexcept {
    incoming_waiter* w = head;
    if (w) {
      head = w->next;
      if (!head) tail = nullptr;
    }
    return w;
  }
  bool remove(incoming_waiter* w) noexcept {
    incoming_waiter* prev = nullptr;
    for (incoming_waiter* cur = head; cur; prev = cur, cur = cur->next) {
      if (cur != w) continue;
      if (prev) {
        prev->next = cur->next;
      } else {
        head = cur->next;
      }
      if (tail == cur) tail = prev;
      return true;
    }
    return false;
  }
};

namespace {

void release_ref(incoming_state* s) noexcept {
  if (s->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  for (int fd : s->ready) ::close(fd);
  delete s;
}

// A waiter taken off the list is made runnable; called without `m` held, from any thread.
void wake(incoming_waiter* w) noexcept {
  corio::detail::task_header* t = w->node.task;
  corio::detail::end_wait_foreign(t, w);
  t->runtime->schedule(&w->node);
}

// Ends every pending next() with `ended` or `error` (m held); returns them to wake.
incoming_waiter* take_all_waiters(incoming_state* s) noexcept {
  incoming_waiter* all = s->head;
  for (incoming_waiter* w = all; w; w = w->next) {
    w->ended = s->ended;
    w->error = s->error;
  }
  s->head = s->tail = nullptr;
  return all;
}

void wake_all(incoming_waiter* w) noexcept {
  while (w) {
    incoming_waiter* next = w->next;
    wake(w);
    w = next;
  }
}

bool is_transient(int err) noexcept {
  switch (err) {
    case ECONNABORTED:
    case EPROTO:
    case EPERM:
    case EINTR:
    case EAGAIN:
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
      return true;
    default:
      return false;
  }
}

bool is_exhaustion(int err) noexcept {
  return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

void log_pause(int fd, int err, int ms) {
  // At most one line a second for the whole process (T12).
  static std::atomic<std::int64_t> last{0};
  std::int64_t now = corio::detail::steady_now_ns();
  std::int64_t prev = last.load(std::memory_order_relaxed);
  if (now - prev < 1'000'000'000 || !last.compare_exchange_strong(prev, now)) return;
  fmt::print(stderr, "corio: accept on fd {}: {}; pausing accepts for {} ms\n", fd,
             std::generic_category().message(err), ms);
}

void on_accept_cqe(io_op* op, std::int32_t res, std::uint32_t flags, worker& w) noexcept;
void arm(incoming_state* s, worker& w) noexcept;

void backoff_fired(timer_node* t, worker& w) noexcept {
  auto* s = static_cast<incoming_state*>(t->context);
  bool rearm;
  {
    std::lock_guard lock(s->m);
    rearm = !s->dropping && !s->ended;
    s->state = rearm ? incoming_state::phase::accepting : incoming_state::phase::idle;
  }
  if (rearm) {
    arm(s, w);
  } else {
    release_ref(s);
  }
}

void backoff_dropped(timer_node* t) noexcept {
  auto* s = static_cast<incoming_state*>(t->context);
  {
    std::lock_guard lock(s->m);
    s->state = incoming_state::phase::idle;
  }
  release_ref(s);
}
constexpr corio::detail::timer_hooks backoff_hooks{&backoff_fired, &backoff_dropped};

// Submits the multishot accept on `w` (the owner); the machinery reference is already held.
void arm(incoming_state* s, worker& w) noexcept {
  int fd = s->listener->note_worker(w.index());
  if (fd < 0) {
    incoming_waiter* woken;
    {
      std::lock_guard lock(s->m);
      s->ended = true;
      s->state = incoming_state::phase::idle;
      woken = take_all_waiters(s);
    }
    wake_all(woken);
    release_ref(s);
    return;
  }
  try {
    io_uring_sqe* sqe = w.get_sqe();
    io_uring_prep_multishot_accept(sqe, fd, nullptr, nullptr, SOCK_CLOEXEC);
    io_uring_sqe_set_data(sqe, static_cast<io_op*>(&s->op));
    s->op.on_cqe = &on_accept_cqe;
    w.op_submitted(&s->op);
  } catch (...) {
    std::terminate();  // the ring cannot submit at all
  }
}

void on_accept_cqe(io_op* op, std::int32_t res, std::uint32_t flags, worker& w) noexcept {
  incoming_state* s = static_cast<incoming_state::accept_op*>(op)->st;
  bool more = flags & IORING_CQE_F_MORE;
  incoming_waiter* handed = nullptr;
  incoming_waiter* woken = nullptr;
  enum { keep, rearm, pause, stop } next = keep;
  {
    std::lock_guard lock(s->m);
    if (res >= 0) {
      s->backoff_ms = 0;  // progress: a later exhaustion starts the back-off afresh
      if (s->dropping || w.draining()) {
        ::close(res);
      } else if ((handed = s->pop()) != nullptr) {
        handed->fd = res;
      } else {
        s->ready.push_back(res);
      }
    }
    if (!more) {
      int err = res < 0 ? -res : 0;
      if (s->dropping || w.draining()) {
        next = stop;
      } else if (err == 0 || is_transient(err)) {
        next = rearm;
        s->backoff_ms = 0;
      } else if (is_exhaustion(err)) {
        next = pause;
        s->backoff_ms = s->backoff_ms == 0 ? 10 : std::min(s->backoff_ms * 2, 1000);
      } else {
        // ECANCELED (the listener was closed under it), EBADF, EINVAL: the end; else an error.
        if (err == ECANCELED || err == EBADF || err == EINVAL) {
          s->ended = true;
        } else {
          s->error = err;
        }
        next = stop;
        woken = take_all_waiters(s);
      }
      s->state = next == rearm   ? incoming_state::phase::accepting
                 : next == pause ? incoming_state::phase::backing_off
                                 : incoming_state::phase::idle;
    }
  }
  if (handed) wake(handed);
  wake_all(woken);
  switch (next) {
    case keep:
      break;
    case rearm:
      arm(s, w);
      break;
    case pause:
      w.note_accept_pause();
      log_pause(s->listener->get(), -res, s->backoff_ms);
      s->backoff.deadline_ns =
          corio::detail::steady_now_ns() + std::int64_t{s->backoff_ms} * 1'000'000;
      s->backoff.hooks = &backoff_hooks;
      s->backoff.context = s;
      w.arm_timer(&s->backoff);
      break;
    case stop:
      release_ref(s);
      break;
  }
}

// The user dropped the object while the machinery was active: stop it on the owner.
void stop_on_owner(deferred_action* a, worker& w) noexcept {
  incoming_state* s = static_cast<incoming_state::stop_message*>(a)->st;
  incoming_state::phase p;
  {
    std::lock_guard lock(s->m);
    p = s->state;
  }
  if (p == incoming_state::phase::accepting) {
    if (!w.draining()) w.cancel_op(&s->op);  // its final CQE releases the reference
  } else if (p == incoming_state::phase::backing_off) {
    if (w.disarm_timer(&s->backoff)) {
      {
        std::lock_guard lock(s->m);
        s->state = incoming_state::phase::idle;
      }
      release_ref(s);
    }
  }
  release_ref(s);  // the reference the posted message held
}

// Cancel action of a waiting next() (cancel.cpp step 3), with the task's cancel lock held.
void cancel_waiter(wait_point* p, worker& w) noexcept {
  auto* waiter = static_cast<incoming_waiter*>(p);
  incoming_state* s = waiter->state;
  bool removed;
  {
    std::lock_guard lock(s->m);
    removed = s->remove(waiter);
  }
  if (!removed) return;  // handed a connection or ended meanwhile: that side resumes it
  waiter->cancelled = true;
  corio::detail::end_wait_owner(waiter->node.task);
  w.schedule_local(&waiter->node);
}

bool take_locked(incoming_state* s, incoming_waiter& w) noexcept {
  if (!s->ready.empty()) {
    w.fd = s->ready.front();
    s->ready.pop_front();
    return true;
  }
  if (s->error != 0 || s->ended) {
    w.error = s->error;
    w.ended = s->ended;
    return true;
  }
  return false;
}

}  // namespace

int incoming_listener_fd(const incoming_state* s) noexcept {
  auto* st = const_cast<incoming_state*>(s);
  std::lock_guard lock(st->m);
  return st->ended ? -1 : st->listener->get();
}

incoming_state* incoming_create(fd_owner& listener) {
  auto* s = new incoming_state;
  s->listener = &listener;
  s->op.st = s;
  s->stop.st = s;
  return s;
}

void incoming_release(incoming_state* s) noexcept {
  bool active;
  incoming_waiter* woken;
  std::deque<int> unclaimed;
  {
    std::lock_guard lock(s->m);
    s->dropping = true;
    unclaimed.swap(s->ready);
    s->ended = true;
    woken = take_all_waiters(s);
    active = s->state != incoming_state::phase::idle;
    if (active) s->refs.fetch_add(1, std::memory_order_relaxed);  // for the message
  }
  for (int fd : unclaimed) ::close(fd);
  wake_all(woken);
  if (active) {
    s->stop.run = &stop_on_owner;
    s->owner->post(&s->stop);
  }
  release_ref(s);
}

bool incoming_try_take(incoming_state* s, incoming_waiter& w) {
  std::lock_guard lock(s->m);
  return take_locked(s, w);
}

bool incoming_wait(incoming_state* s, incoming_waiter& w, std::coroutine_handle<> h) {
  worker* wk = corio::detail::current_worker();
  if (wk == nullptr) {
    throw std::logic_error("corio: incoming.next() can only be awaited by a task on a worker");
  }
  w.node.handle = h;
  w.node.task = wk->current_task();
  w.cancel = &cancel_waiter;
  if (!corio::detail::begin_wait(*wk, w.node.task, &w, corio::detail::wait_kind::accept)) {
    w.cancelled = true;
    return false;
  }
  bool start = false;
  {
    std::lock_guard lock(s->m);
    if (take_locked(s, w)) {
      corio::detail::end_wait_owner(w.node.task);
      return false;
    }
    s->push(&w);
    w.holds_ref = true;
    s->refs.fetch_add(1, std::memory_order_relaxed);
    if (s->state == incoming_state::phase::idle && !s->dropping) {
      s->state = incoming_state::phase::accepting;
      s->owner = wk;
      s->refs.fetch_add(1, std::memory_order_relaxed);  // the machinery's reference
      start = true;
    }
  }
  if (start) arm(s, *wk);
  return true;
}

void incoming_leave(incoming_waiter& w) noexcept {
  if (w.fd >= 0) ::close(std::exchange(w.fd, -1));  // handed a connection nobody took
  if (!w.holds_ref) return;
  incoming_state* s = w.state;
  {
    std::lock_guard lock(s->m);
    s->remove(&w);  // still waiting only when shutdown destroys the frame
  }
  w.holds_ref = false;
  release_ref(s);
}

void throw_incoming_error(int err) {
  throw std::system_error(err, std::generic_category(), "corio: accepting connections");
}

}  // namespace corio::net::detail
