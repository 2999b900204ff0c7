// corio::fd_stream: any file descriptor as a stream (pipes, ttys, files, sockets, eventfds...).
#pragma once

#include <corio/detail/stream_base.hpp>

namespace corio {

/// Reads and writes any fd through io_uring (IORING_OP_READ / IORING_OP_WRITE at the file
/// position), like May's CoIo: pipes and sockets are polled by the kernel, a tty or a regular
/// file is served by the kernel's io-wq threads -- no worker blocks either way. The same
/// operations as tcp_stream: read, read_exact, write, write_all, writev, close, timeouts.
///
/// An fd_stream made from an fd owns it and closes it when destroyed (through the same safe close
/// as sockets); `borrow` makes one that never closes it.
///
/// Like every ring operation, a suspended read or write resumes on whichever worker reaps its
/// completion (or steals the task), and a cancelled one (join_handle::cancel, corio::timeout) is
/// withdrawn with IORING_OP_ASYNC_CANCEL and throws operation_cancelled (timed_out), unless it
/// completed first. The stream does not set O_NONBLOCK or change the fd in any other way.
class fd_stream : public detail::stream_base {
 public:
  fd_stream() noexcept = default;
  /// Adopts `fd`: it is closed with the stream.
  explicit fd_stream(int fd) noexcept
      : stream_base(fd, detail::fd_owner::kind::file, detail::io_kind::read,
                    detail::io_kind::write) {}
  /// Uses `fd` without owning it (close() and the destructor leave it open).
  static fd_stream borrow(int fd) noexcept {
    fd_stream s;
    s.fd_ = detail::fd_owner(fd, detail::fd_owner::kind::borrowed);
    s.read_kind_ = detail::io_kind::read;
    s.write_kind_ = detail::io_kind::write;
    return s;
  }
};

/// The process's standard streams, borrowed (never closed by corio): fd 0.
inline fd_stream stdin_stream() noexcept {
  return fd_stream::borrow(0);
}
/// fd 1, borrowed. Its writes do not go through, or synchronise with, std::cout or stdio buffers.
inline fd_stream stdout_stream() noexcept {
  return fd_stream::borrow(1);
}
/// fd 2, borrowed; unbuffered like the others.
inline fd_stream stderr_stream() noexcept {
  return fd_stream::borrow(2);
}

}  // namespace corio
