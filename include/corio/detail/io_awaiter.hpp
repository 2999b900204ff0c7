// The awaiter behind every socket, stream and file operation.
#pragma once

#include <corio/detail/io_op.hpp>
#include <corio/error.hpp>
#include <corio/time.hpp>

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <string>
#include <system_error>
#include <utility>

struct msghdr;
struct sockaddr;

namespace corio::detail {

class fd_owner;

/// What one ring operation does. The library prepares the SQE from it (io_submit.cpp), so that
/// public headers need not include liburing.
enum class io_kind : std::uint8_t {
  read,     // IORING_OP_READ: fd, buf, len, offset (-1: the file position)
  write,    // IORING_OP_WRITE
  writev,   // IORING_OP_WRITEV: fd, msg->msg_iov / msg_iovlen, offset
  recv,     // IORING_OP_RECV: fd, buf, len, flags
  send,     // IORING_OP_SEND with MSG_NOSIGNAL
  send_zc,  // IORING_OP_SEND_ZC (a plain send where the kernel lacks it); completes at the
            // kernel's notification that it let go of the buffer, not at its result
  recvmsg,  // IORING_OP_RECVMSG: fd, msg, flags
  sendmsg,  // IORING_OP_SENDMSG with MSG_NOSIGNAL
  accept,   // IORING_OP_ACCEPT: fd, addr, addrlen (SOCK_CLOEXEC)
  connect,  // IORING_OP_CONNECT: fd, addr, addrlen
  openat,   // IORING_OP_OPENAT: path (in buf), flags, mode (in offset)
  fsync,    // IORING_OP_FSYNC: fd, flags (IORING_FSYNC_DATASYNC)
  statx,    // IORING_OP_STATX: fd, statx buffer (in buf), AT_EMPTY_PATH
};

/// The arguments of a ring operation, and its progress for operations that loop.
struct io_args {
  io_kind kind = io_kind::read;
  bool exact = false;         // loop until `len` bytes (or, with `msg`, all its iovecs) are done
  bool eof_is_error = false;  // exact reads: 0 before the end is corio::errc::unexpected_eof
  const char* what = "";      // the operation's name in error messages ("read", "connect", ...)
  fd_owner* owner = nullptr;  // where `fd` comes from (null: `fd` as given)
  int fd = -1;
  int flags = 0;
  void* buf = nullptr;
  std::size_t len = 0;
  std::uint64_t offset = static_cast<std::uint64_t>(-1);
  msghdr* msg = nullptr;
  sockaddr* addr = nullptr;
  unsigned addrlen = 0;         // connect: the address length; accept: in/out
  std::int64_t timeout_ns = 0;  // relative, from the stream's default (0: none)
  std::size_t done = 0;         // exact: bytes transferred so far
  int setup_error = 0;  // an errno from preparing the operation (e.g. socket()): not submitted
  /// Appends a description of the operation's object to error messages (e.g. the address).
  void (*describe)(const void* ctx, std::string& out) = nullptr;
  const void* describe_ctx = nullptr;
};

/// The state of one operation: the op itself, plus a deadline timer on the same worker.
struct io_state : io_op {
  timer_node deadline;           // armed while the op is in flight with a deadline
  std::int64_t deadline_ns = 0;  // absolute (steady clock); 0: none
  bool timed_out = false;
  io_args args;
};

/// Submits the operation on the current worker's ring. Returns false without suspending if the
/// task was cancelled, the deadline already passed, or the fd is closed; `s.res` then holds the
/// error. Throws std::logic_error off a worker.
bool submit_io(io_state& s, std::coroutine_handle<> h);

/// The operation's outcome: bytes (or the fd, for accept/openat), or the error -- timed_out and
/// operation_cancelled map to ETIMEDOUT and ECANCELED; an ECANCELED the task did not ask for means
/// the fd was closed under the operation (corio::errc::stream_closed).
result<std::size_t> io_result(const io_state& s) noexcept;
/// io_result's success cases, inline: true with the byte count (or fd) in `n` for a plain op
/// that succeeded or an exact transfer that completed; false where io_result must decide.
inline bool io_succeeded(const io_state& s, std::size_t& n) noexcept {
  if (s.res < 0) return false;
  if (!s.args.exact) {
    n = static_cast<std::size_t>(s.res);
    return true;
  }
  n = s.args.done;
  return s.args.done >= s.args.len;
}
/// The exception for a failed operation: "<what> on fd N: <reason>".
[[noreturn]] void throw_io_error(const io_state& s, std::error_code e);

/// A ring operation as an awaitable. `Derived::finish(io_state&, std::size_t)` turns the raw result
/// into the value (for example a tcp_stream from an accepted fd); it runs only on success.
///
/// Awaiters are movable until awaited (so that with_deadline and nothrow can wrap them), and must
/// not be moved after. Use them directly in a co_await expression.
template <class Derived, class T>
class io_awaiter {
 public:
  using value_type = T;

  io_awaiter() noexcept = default;
  io_awaiter(io_awaiter&&) noexcept = default;
  io_awaiter& operator=(io_awaiter&&) = delete;

  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) { return submit_io(s_, h); }
  T await_resume() {
    if (std::size_t n; io_succeeded(s_, n)) [[likely]]
      return static_cast<Derived*>(this)->finish(s_, n);
    result<std::size_t> r = io_result(s_);
    if (!r) throw_io_error(s_, r.error());
    return static_cast<Derived*>(this)->finish(s_, *r);
  }

  /// The non-throwing form: `co_await op.nothrow()` yields corio::result<T>.
  auto nothrow() && {
    struct nothrow_awaiter {
      Derived op;
      bool await_ready() const noexcept { return false; }
      bool await_suspend(std::coroutine_handle<> h) { return submit_io(op.s_, h); }
      result<T> await_resume() {
        std::size_t n;
        if (!io_succeeded(op.s_, n)) [[unlikely]] {
          result<std::size_t> r = io_result(op.s_);
          if (!r) return r.error();
          n = *r;
        }
        if constexpr (std::is_void_v<T>) {
          op.finish(op.s_, n);
          return {};
        } else {
          return op.finish(op.s_, n);
        }
      }
    };
    return nothrow_awaiter{std::move(static_cast<Derived&>(*this))};
  }

  /// Gives the operation an absolute deadline (corio::timeout uses it): when it passes, the op
  /// is cancelled on its own worker and the awaiter throws corio::timed_out.
  Derived with_deadline(std::int64_t deadline_ns) && {
    if (s_.deadline_ns == 0 || deadline_ns < s_.deadline_ns) s_.deadline_ns = deadline_ns;
    return std::move(static_cast<Derived&>(*this));
  }

 protected:
  io_state s_;
};

}  // namespace corio::detail
