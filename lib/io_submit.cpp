// submit_io: one path from every socket, stream and file awaiter to the ring.
//
// For an operation on worker W:
//  1. the fd is read through its owner, which records W as a ring that carries operations on it
//     (fd_owner.cpp uses that to cancel them before the fd is closed);
//  2. the task's wait point is registered (cancel.cpp); a cancelled task does not suspend;
//  3. a deadline (corio::timeout, or the stream's default timeout) arms a timer on W whose expiry
//     cancels the op on W -- the op, its timer and the cancellation all live on one worker;
//  4. the SQE is prepared; its CQE comes back to W, which disarms the timer, resubmits the rest of
//     an exact transfer (read_exact, write_all) or completes the op. A zero-copy send has two
//     CQEs, its result and the buffer's release; it goes on at the second.
#include "cancel.hpp"
#include "context.hpp"
#include "runtime_core.hpp"
#include "worker.hpp"

#include <corio/detail/fd_owner.hpp>
#include <corio/detail/io_awaiter.hpp>
#include <corio/detail/stream_base.hpp>

#include <fmt/format.h>

#include <fcntl.h>
#include <linux/stat.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <unistd.h>

#include <algorithm>
#include <climits>
#include <stdexcept>

namespace corio::detail {

namespace {

// One operation moves at most 1 GiB: the kernel reports results as int (tokio#7567). Exact
// transfers continue with the rest.
constexpr std::size_t max_chunk = std::size_t{1} << 30;

std::size_t remaining(const io_args& a) noexcept {
  return std::min(a.len - a.done, max_chunk);
}

void zero_copy_complete(io_op* op, std::int32_t res, std::uint32_t flags, worker& w) noexcept;

// Out of line, so that prep, which runs for every operation, makes no call of its own.
[[gnu::noinline]] void prep_send_zc(io_uring_sqe* sqe, io_state& s, char* base, unsigned len) {
  io_args& a = s.args;
  if (current_worker()->runtime().features().op_send_zc) {  // prep runs on the op's worker
    io_uring_prep_send_zc(sqe, a.fd, base, len, a.flags | MSG_NOSIGNAL, 0);
    s.on_cqe = &zero_copy_complete;  // after submit_io's default
  } else {
    a.kind = io_kind::send;  // the kernel lacks it: a plain send, from now on
    io_uring_prep_send(sqe, a.fd, base, len, a.flags | MSG_NOSIGNAL);
  }
}

void prep(io_uring_sqe* sqe, io_state& s) {
  io_args& a = s.args;
  // Gather writes have no single buffer (a.buf is null; the iovecs advance instead).
  char* base = a.buf != nullptr ? static_cast<char*>(a.buf) + a.done : nullptr;
  std::uint64_t off = a.offset == static_cast<std::uint64_t>(-1) ? a.offset : a.offset + a.done;
  auto len = static_cast<unsigned>(remaining(a));
  // First: liburing's prep helpers leave user_data alone, and the zero-copy case below is then
  // a tail call, which spares every other operation a stack frame here.
  io_uring_sqe_set_data(sqe, static_cast<io_op*>(&s));
  switch (a.kind) {
    case io_kind::read:
      io_uring_prep_read(sqe, a.fd, base, len, off);
      break;
    case io_kind::write:
      io_uring_prep_write(sqe, a.fd, base, len, off);
      break;
    case io_kind::writev:
      io_uring_prep_writev(sqe, a.fd, a.msg->msg_iov, static_cast<unsigned>(a.msg->msg_iovlen),
                           a.offset);
      break;
    case io_kind::recv:
      io_uring_prep_recv(sqe, a.fd, base, len, a.flags);
      break;
    case io_kind::send_zc:
      prep_send_zc(sqe, s, base, len);
      return;
    case io_kind::send:
      io_uring_prep_send(sqe, a.fd, base, len, a.flags | MSG_NOSIGNAL);
      break;
    case io_kind::recvmsg:
      io_uring_prep_recvmsg(sqe, a.fd, a.msg, static_cast<unsigned>(a.flags));
      break;
    case io_kind::sendmsg:
      io_uring_prep_sendmsg(sqe, a.fd, a.msg, static_cast<unsigned>(a.flags | MSG_NOSIGNAL));
      break;
    case io_kind::accept:
      io_uring_prep_accept(sqe, a.fd, a.addr, reinterpret_cast<socklen_t*>(&a.addrlen),
                           SOCK_CLOEXEC);
      break;
    case io_kind::connect:
      io_uring_prep_connect(sqe, a.fd, a.addr, a.addrlen);
      break;
    case io_kind::openat:
      io_uring_prep_openat(sqe, AT_FDCWD, static_cast<const char*>(a.buf), a.flags | O_CLOEXEC,
                           static_cast<mode_t>(a.offset));
      break;
    case io_kind::fsync:
      io_uring_prep_fsync(sqe, a.fd, static_cast<unsigned>(a.flags));
      break;
    case io_kind::statx:
      io_uring_prep_statx(sqe, a.fd, "", AT_EMPTY_PATH, STATX_SIZE,
                          static_cast<struct statx*>(a.buf));
      break;
  }
}

// Advances an exact sendmsg past `n` bytes: drops the iovecs fully sent, trims the partial one.
void advance_iovecs(msghdr* msg, std::size_t n) noexcept {
  while (n > 0 && msg->msg_iovlen > 0) {
    iovec& v = msg->msg_iov[0];
    if (n >= v.iov_len) {
      n -= v.iov_len;
      ++msg->msg_iov;
      --msg->msg_iovlen;
    } else {
      v.iov_base = static_cast<char*>(v.iov_base) + n;
      v.iov_len -= n;
      n = 0;
    }
  }
}

// By bytes, for gather writes too: trailing empty iovecs would otherwise ask for another send,
// whose 0 reads as an end of stream.
bool exact_done(const io_args& a) noexcept {
  return a.done >= a.len;
}

void deadline_fired(timer_node* t, worker& w) noexcept {
  auto* s = static_cast<io_state*>(t->context);
  s->timed_out = true;
  w.cancel_op(s);  // the op is in flight on this worker: its timer was armed here
}
constexpr timer_hooks deadline_hooks{&deadline_fired, nullptr};

// An exact transfer moved `res` > 0 more bytes (already counted in `done`) and has iovecs to
// advance or bytes left: submits the rest if the op goes on. Returns false when it does not, or
// sets `res` to -EIO when the ring cannot submit. Out of line, so that io_complete's common path
// (a transfer done in one operation) stays small.
[[gnu::noinline]] bool continue_exact(io_state* s, std::int32_t& res, worker& w) noexcept {
  io_args& a = s->args;
  if (a.msg != nullptr) advance_iovecs(a.msg, static_cast<std::size_t>(res));
  if (exact_done(a) || s->cancelled || s->timed_out || w.draining()) return false;
  try {
    prep(w.get_sqe(), *s);  // the rest, from the completion path (T11: flushed by the loop)
    w.op_submitted(s);
    return true;
  } catch (...) {
    res = -EIO;  // the ring cannot submit: report it on this op
    return false;
  }
}

void io_complete(io_op* op, std::int32_t res, std::uint32_t flags, worker& w) noexcept {
  auto* s = static_cast<io_state*>(op);
  io_args& a = s->args;
  if (a.exact && res > 0) {
    a.done += static_cast<std::size_t>(res);
    if ((a.msg != nullptr || !exact_done(a)) && continue_exact(s, res, w)) return;
  }
  if (s->deadline.heap_index != timer_node::not_queued) w.disarm_timer(&s->deadline);
  if (w.draining() && res >= 0 && (a.kind == io_kind::accept || a.kind == io_kind::openat)) {
    ::close(res);  // shutdown: nobody will take this fd
    return;
  }
  s->res = res;
  s->cqe_flags = flags;
  w.complete_op(s);
}

// The on_cqe of a zero-copy send. Its result comes first, flagged F_MORE, and the buffer stays
// the kernel's until a second CQE, the notification, says it let go (on TCP once the bytes are
// acknowledged, on loopback once the receiver has them). The op goes on (resubmitted or
// completed) only then, so the caller's buffer is free once the write returns and an exact
// transfer never has two sends of one op in flight. A result without F_MORE (the send failed
// before it took the buffer) has no notification and goes on at once.
void zero_copy_complete(io_op* op, std::int32_t res, std::uint32_t flags, worker& w) noexcept {
  if (flags & IORING_CQE_F_MORE) {
    op->res = res;  // held until the notification: nothing reads it before the op completes
    return;
  }
  if (flags & IORING_CQE_F_NOTIF) {
    res = op->res;
    flags = 0;
  }
  io_complete(op, res, flags, w);
}

}  // namespace

bool submit_io(io_state& s, std::coroutine_handle<> h) {
  worker& w = require_worker(s.args.what);
  io_args& a = s.args;
  s.node.handle = h;
  s.node.task = w.current_task();
  s.on_cqe = &io_complete;
  s.cancel = &cancel_io_op;
  s.res = 0;
  s.timed_out = false;
  s.cancelled = false;
  if (a.setup_error != 0) {
    s.res = -a.setup_error;
    return false;
  }
  if (a.owner != nullptr) {
    a.fd = a.owner->note_worker(w.index());
    if (a.fd < 0) {
      s.cancelled = false;
      s.res = -EBADF;  // closed before this operation started
      return false;
    }
  }
  if (!begin_wait(w, s.node.task, &s, wait_kind::io)) {
    s.cancelled = true;
    s.res = -ECANCELED;
    return false;
  }
  op_deadline deadline = operation_deadline(s.deadline_ns, a.timeout_ns);
  if (deadline.at != 0) {
    if (deadline.passed) {
      end_wait_owner(s.node.task);
      s.timed_out = true;
      s.res = -ECANCELED;
      return false;
    }
    s.deadline.deadline_ns = deadline.at;
    s.deadline.hooks = &deadline_hooks;
    s.deadline.context = &s;
    w.arm_timer(&s.deadline);
  }
  io_uring_sqe* sqe;
  try {
    sqe = w.get_sqe();
  } catch (...) {
    if (deadline.at != 0) w.disarm_timer(&s.deadline);
    end_wait_owner(s.node.task);
    throw;
  }
  prep(sqe, s);
  w.op_submitted(&s);
  return true;
}

result<std::size_t> io_result(const io_state& s) noexcept {
  if (std::size_t n; io_succeeded(s, n)) return n;
  if (s.res >= 0) {
    // An exact transfer stopped short without an error of its own: say why (the byte count goes
    // into the exception's message).
    if (s.timed_out) return std::make_error_code(std::errc::timed_out);
    if (s.cancelled) return std::make_error_code(std::errc::operation_canceled);
    return make_error_code(errc::unexpected_eof);
  }
  if (s.res == -ECANCELED) {
    if (s.timed_out) return std::make_error_code(std::errc::timed_out);
    if (s.cancelled) return std::make_error_code(std::errc::operation_canceled);
    return make_error_code(errc::stream_closed);  // cancelled by a close, not by this task
  }
  return errno_code(-s.res);
}

void throw_io_error(const io_state& s, std::error_code e) {
  const io_args& a = s.args;
  std::string what = a.kind == io_kind::openat
                         ? fmt::format("corio: {} {}", a.what, static_cast<const char*>(a.buf))
                         : fmt::format("corio: {} on fd {}", a.what, a.fd);
  if (a.describe != nullptr) a.describe(a.describe_ctx, what);
  if (a.exact && a.done > 0) what += fmt::format(" after {} of {} bytes", a.done, a.len);
  throw_error(e, what);
}

void stream_base::throw_zero_copy_not_socket() {
  throw std::logic_error(
      "corio: set_zero_copy_writes on a stream that is not a socket (it writes with write(2), "
      "which has no zero-copy form)");
}

}  // namespace corio::detail
