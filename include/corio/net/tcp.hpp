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
enum class shutdown_how { read = SHUT_RD, write = SHUT_WR, both = SHUT_RDWR };

class tcp_stream;
struct tcp_accepted;

/// A connected TCP socket. Reads and writes are io_uring operations on the current worker's ring
/// (recv/send; sends never raise SIGPIPE). Every operation throws std::system_error naming it and
/// the fd on failure, or yields corio::result<T> through `.nothrow()`; see stream_base for them.
///
/// A stream may be read by one task while another writes, and closed while others are suspended
/// in operations on it (they fail with corio::errc::stream_closed). It must not be moved while an
/// operation is being started on it.
class tcp_stream : public corio::detail::stream_base {
 public:
  tcp_stream() noexcept = default;
  /// Adopts a connected TCP socket.
  explicit tcp_stream(int fd) noexcept;
  static tcp_stream from_fd(int fd) noexcept { return tcp_stream(fd); }

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
  socket_address local_address() const;
  socket_address peer_address() const;
};

/// What tcp_listener::accept and incoming().next() yield.
struct tcp_accepted {
  tcp_stream stream;
  socket_address peer;
  static tcp_accepted from_fd(int fd);
};

/// A listening TCP socket.
class tcp_listener {
 public:
  tcp_listener() noexcept = default;
  tcp_listener(tcp_listener&&) noexcept = default;
  tcp_listener& operator=(tcp_listener&&) noexcept = default;

  /// socket + SO_REUSEADDR + bind + listen. "0.0.0.0:0" or "[::1]:0" pick a free port (see
  /// local_address). Throws std::system_error naming the address (EADDRINUSE, EACCES, ...).
  static tcp_listener bind(const socket_address& addr, int backlog = 4096);
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

  socket_address local_address() const;
  /// Closes the listener: pending accepts (and incoming().next()) end.
  [[nodiscard]] corio::detail::close_op close() { return corio::detail::close_op(fd_); }
  int native_handle() const noexcept { return fd_.get(); }

 private:
  corio::detail::fd_owner fd_;
};

}  // namespace corio::net
