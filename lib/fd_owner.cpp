// Closing an fd that rings may still act on.
//
// The hazard: an operation prepared on worker A (its SQE not yet submitted, or in flight) names
// fd 7; a task on worker B closes fd 7; a new socket gets number 7; A's ring then acts on the new
// socket, and one connection reads another's data (liburing#363). Or a pending operation keeps the
// old socket alive and its peer never sees a FIN (liburing#932).
//
// The protocol, on the closing worker W:
//  1. Take the fd out of the owner (fd := -1, seq_cst). Operations starting later see -1 and fail
//     with EBADF. An operation that read the fd just before recorded its worker first (note_worker:
//     set the worker bit, seq_cst, then read the fd), so W's read of the worker set below sees it.
//  2. If only W (or no worker) ever carried operations on the fd: on W's ring, an
//     IORING_OP_ASYNC_CANCEL of every request on the fd, hard-linked to IORING_OP_CLOSE. SQEs are
//     consumed in order, so anything prepared on W before is submitted -- and cancelled -- first.
//  3. Otherwise: every worker in the set (W included) gets a message; each cancels the fd's
//     requests on its ring and flushes its SQ, which submits (and so cancels) any SQE it had
//     prepared on the fd, then acknowledges. The last acknowledgement submits the close on its
//     own ring. Until then the number cannot be reused.
// Operations cancelled this way complete with -ECANCELED that their task did not ask for, which
// io_result reports as corio::errc::stream_closed.
//
// Off a worker (the shutdown phase, a foreign thread, after block_on returned) the fd is closed
// at once: at shutdown every ring has already been drained.
#include "context.hpp"
#include "ring.hpp"
#include "runtime_core.hpp"
#include "worker.hpp"

#include <corio/detail/fd_owner.hpp>
#include <corio/detail/frame_alloc.hpp>

#include <fmt/format.h>

#include <unistd.h>

#include <bit>
#include <new>

namespace corio::detail {

namespace {

constexpr std::uint64_t high_bit = fd_owner::worker_bit(63);
constexpr auto bit_of = &fd_owner::worker_bit;

// The cross-worker part (step 3). One allocation holds the request and one message per worker.
struct close_request {
  struct message : deferred_action {
    close_request* req = nullptr;
  };
  int fd = -1;
  std::atomic<unsigned> remaining{0};
  close_state* waiter = nullptr;  // null: nobody awaits the close
  unsigned count = 0;
  message* messages() noexcept { return reinterpret_cast<message*>(this + 1); }

  static close_request* create(int fd, unsigned count, close_state* waiter) {
    std::size_t size = sizeof(close_request) + count * sizeof(message);
    auto* r = new (frame_alloc(size)) close_request;
    r->fd = fd;
    r->count = count;
    r->waiter = waiter;
    r->remaining.store(count, std::memory_order_relaxed);
    for (unsigned i = 0; i < count; ++i) new (r->messages() + i) message;
    return r;
  }
  void destroy() noexcept {
    std::size_t size = sizeof(close_request) + count * sizeof(message);
    this->~close_request();
    frame_free(this, size);
  }
};

// The final close, on worker `w`: through the ring when a session runs, else at once.
void final_close(int fd, close_state* waiter, worker& w) noexcept {
  if (w.draining()) {
    // The session is over: rings are drained; a waiter's frame is being destroyed.
    ::close(fd);
    return;
  }
  try {
    io_uring_sqe* sqe = w.get_sqe();
    io_uring_prep_close(sqe, fd);
    if (waiter != nullptr) {
      io_uring_sqe_set_data(sqe, static_cast<io_op*>(waiter));
    } else {
      sqe->user_data = ud_fire_and_forget;
    }
    w.note_internal_sqe();
  } catch (...) {
    ::close(fd);  // the ring cannot submit: close synchronously rather than leak
    if (waiter != nullptr) {
      waiter->res = 0;
      w.complete_op(waiter);
    }
  }
}

void cancel_fd_here(int fd, worker& w, bool link) {
  io_uring_sqe* sqe = w.get_sqe();
  io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
  sqe->user_data = ud_fire_and_forget;
  if (link) sqe->flags |= IOSQE_IO_HARDLINK;  // the close runs after it, whatever its result
  w.note_internal_sqe();
}

void on_close_message(deferred_action* a, worker& w) noexcept {
  auto* m = static_cast<close_request::message*>(a);
  close_request* r = m->req;
  if (!w.draining()) {
    try {
      cancel_fd_here(r->fd, w, false);
      w.flush();  // SQEs prepared here on the fd are submitted (and cancelled) now
    } catch (...) {
      // A ring that cannot submit has nothing of ours in flight either.
    }
  }
  if (r->remaining.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  final_close(r->fd, r->waiter, w);
  r->destroy();
}

// Starts the protocol for `fd` on worker `w`; `waiter` (nullable) completes with the close.
// Returns false if the close already completed synchronously.
bool start_close(int fd, std::uint64_t workers, worker& w, close_state* waiter) {
  std::uint64_t mine = bit_of(w.index());
  if ((workers & ~mine) == 0 && workers != high_bit) {
    // Step 2: only this ring ever saw the fd.
    if (workers != 0) {
      w.reserve_sqes(2);  // the linked pair must reach the kernel in one batch
      cancel_fd_here(fd, w, true);
    }
    final_close(fd, waiter, w);
    return true;
  }
  // Step 3: message every worker in the set.
  runtime_core& rt = w.runtime();
  unsigned n = static_cast<unsigned>(rt.worker_count());
  auto wants = [&](unsigned i) { return (workers & bit_of(i)) != 0; };
  unsigned count = 0;
  for (unsigned i = 0; i < n; ++i) count += wants(i) ? 1u : 0u;
  close_request* r = close_request::create(fd, count, waiter);
  unsigned k = 0;
  for (unsigned i = 0; i < n; ++i) {
    if (!wants(i)) continue;
    close_request::message* m = r->messages() + k++;
    m->req = r;
    m->run = &on_close_message;
    rt.worker_at(i).post(m);  // `r` may be freed by the last acknowledgement from here on
  }
  return true;
}

}  // namespace

fd_owner& fd_owner::operator=(fd_owner&& o) noexcept {
  if (this != &o) {
    close_detached(*this);
    fd_.store(o.fd_.exchange(-1, std::memory_order_acq_rel), std::memory_order_release);
    workers_.store(o.workers_.exchange(0, std::memory_order_acq_rel), std::memory_order_release);
    kind_ = o.kind_;
  }
  return *this;
}

fd_owner::~fd_owner() {
  close_detached(*this);
}

int fd_owner::release() noexcept {
  workers_.store(0, std::memory_order_relaxed);
  return fd_.exchange(-1, std::memory_order_acq_rel);
}

void close_detached(fd_owner& owner) noexcept {
  int fd = owner.fd_.exchange(-1, std::memory_order_seq_cst);
  if (fd < 0) return;
  if (owner.kind_ == fd_owner::kind::borrowed) return;
  std::uint64_t workers = owner.workers_.exchange(0, std::memory_order_seq_cst);
  worker* w = current_worker();
  if (w == nullptr || w->draining()) {
    ::close(fd);
    return;
  }
  try {
    start_close(fd, workers, *w, nullptr);
  } catch (...) {
    ::close(fd);  // out of memory or a broken ring: close at once rather than leak
  }
}

bool submit_close(close_state& s, fd_owner& owner, std::coroutine_handle<> h) {
  s.fd = owner.fd_.exchange(-1, std::memory_order_seq_cst);
  s.res = 0;
  if (s.fd < 0 || owner.kind_ == fd_owner::kind::borrowed) return false;  // nothing to close
  std::uint64_t workers = owner.workers_.exchange(0, std::memory_order_seq_cst);
  worker* w = current_worker();
  if (w == nullptr || w->draining()) {
    if (::close(s.fd) != 0) s.res = -errno;
    return false;
  }
  // Not a wait point: a close is not cancellable, it always completes.
  s.node.handle = h;
  s.node.task = w->current_task();
  s.on_cqe = nullptr;
  s.cancel = nullptr;
  return start_close(s.fd, workers, *w, &s);
}

void close_op::throw_close_error(int fd, int err) {
  throw std::system_error(err, std::generic_category(), fmt::format("corio: close of fd {}", fd));
}

}  // namespace corio::detail
