// corio::net::tcp_listener and corio::net::tcp_stream.
#pragma once

#include <corio/detail/fd_owner.hpp>
#include <corio/detail/io_awaiter.hpp>
#include <corio/detail/stream_base.hpp>
#include <corio/net/address.hpp>
#include <corio/net/incoming.hpp>
#include <corio/net/socket_ops.hpp>

#include <sys/socket.h>

#include <chrono>
#include <string_view>

namespace corio::net {

/// Which directions shutdown() closes.
enum class shutdown_how {
  read = SHUT_RD,    ///< no more receiving
  write = SHUT_WR,   ///< no more sending: the peer reads an end of stream after the queued data
  both = SHUT_RDWR,  ///< both directions
};

class tcp_stream;
struct tcp_accepted;

/// A connected TCP socket. Reads and writes are io_uring operations on the current worker's ring
/// (recv/send; sends never raise SIGPIPE). Every operation throws std::system_error naming it and
/// the fd on failure, or yields corio::result<T> through `.nothrow()`. They are those of every
/// corio byte stream: read, read_exact, write, write_all, writev, set_read_timeout,
/// set_write_timeout, close, is_open, native_handle and release.
///
/// A suspended operation resumes on whichever worker reaps its completion (or steals the task).
/// A cancelled one (join_handle::cancel, corio::timeout, a per-stream timeout) is withdrawn with
/// IORING_OP_ASYNC_CANCEL and throws operation_cancelled (timed_out), unless it completed first,
/// in which case its result stands. A write_all interrupted that way may have sent part of its
/// buffer.
///
/// A stream may be read by one task while another writes, and closed while others are suspended
/// in operations on it (they fail with corio::errc::stream_closed). It must not be moved while an
/// operation is being started on it.
class tcp_stream : public corio::detail::stream_base {
 public:
  tcp_stream() noexcept = default;
  /// Adopts a connected TCP socket.
  explicit tcp_stream(int fd) noexcept;
  /// The same as the constructor: adopts a connected TCP socket.
  static tcp_stream from_fd(int fd) noexcept { return tcp_stream(fd); }

  /// The awaiter of connect(): owns the new socket until the connection is established (and
  /// closes it if that fails), and supports `.nothrow()` and corio::timeout.
  using connect_op = detail::connect_op<tcp_stream, socket_address>;

  /// `co_await tcp_stream::connect(addr)`: a new connected stream. Throws std::system_error naming
  /// the address (ECONNREFUSED, ...). Connections to IPv4 and IPv6 addresses both work.
  [[nodiscard]] static connect_op connect(const socket_address& addr) {
    return connect_op(addr, SOCK_STREAM);
  }
  /// Parses `addr` ("127.0.0.1:8080", "[::1]:8080"; std::invalid_argument if malformed).
  [[nodiscard]] static connect_op connect(std::string_view addr) {
    return connect(socket_address::parse(addr));
  }
  /// Gives up (corio::timed_out) when the connection is not established within `timeout`.
  template <class Rep, class Period>
  [[nodiscard]] static connect_op connect(const socket_address& addr,
                                          std::chrono::duration<Rep, Period> timeout) {
    return connect(addr).with_deadline(corio::detail::steady_now_ns() +
                                       corio::detail::duration_to_ns(timeout));
  }

  /// TCP_NODELAY: send small writes at once instead of coalescing them (Nagle).
  void set_nodelay(bool on);
  /// shutdown(2) now (a non-blocking system call): `write` sends a FIN after queued data.
  void shutdown(shutdown_how how);
  /// getsockname(2); throws std::system_error.
  socket_address local_address() const;
  /// getpeername(2); throws std::system_error (ENOTCONN, for instance).
  socket_address peer_address() const;
};

/// What tcp_listener::accept and incoming().next() yield.
struct tcp_accepted {
  tcp_stream stream;    ///< The connection.
  socket_address peer;  ///< Its peer; empty if the peer was gone when it was asked for.
  /// Adopts the accepted socket `fd` and asks for its peer (getpeername); used by incoming().
  static tcp_accepted from_fd(int fd);
};

/// A listening TCP socket. Accepts are ring operations: they resume on whichever worker reaps the
/// completion, and a cancelled accept (join_handle::cancel, corio::timeout) throws
/// operation_cancelled (timed_out) unless a connection was accepted first. Destroying the listener
/// closes it without waiting.
class tcp_listener {
 public:
  /// Not open.
  tcp_listener() noexcept = default;
  /// Takes over `other`'s socket.
  tcp_listener(tcp_listener&&) noexcept = default;
  /// Closes this listener's socket (without waiting), then takes over `other`'s.
  tcp_listener& operator=(tcp_listener&&) noexcept = default;

  /// socket + SO_REUSEADDR + bind + listen. "0.0.0.0:0" or "[::1]:0" pick a free port (see
  /// local_address). Throws std::system_error naming the address (EADDRINUSE, EACCES, ...).
  static tcp_listener bind(const socket_address& addr, int backlog = 4096);
  /// Parses `addr` ("0.0.0.0:8080", "[::]:8080"; std::invalid_argument if malformed), then binds.
  static tcp_listener bind(std::string_view addr, int backlog = 4096);

  /// `co_await accept()`: the next connection and its peer address (one IORING_OP_ACCEPT).
  [[nodiscard]] detail::accept_op<tcp_accepted, socket_address> accept() {
    return detail::accept_op<tcp_accepted, socket_address>(fd_);
  }
  /// The connections as they arrive, from a multishot accept: `while (auto c = co_await
  /// in.next())`. Must not outlive the listener.
  [[nodiscard]] incoming_connections<tcp_accepted> incoming() {
    return incoming_connections<tcp_accepted>(fd_);
  }

  /// getsockname(2): the bound address, with the port the kernel picked for port 0.
  socket_address local_address() const;
  /// Closes the listener: pending accepts (and incoming().next()) end.
  [[nodiscard]] corio::detail::close_op close() { return corio::detail::close_op(fd_); }
  /// The listening socket's fd, or -1 when not open; still owned by the listener.
  int native_handle() const noexcept { return fd_.get(); }

 private:
  corio::detail::fd_owner fd_;
};

}  // namespace corio::net
