// Unix domain sockets: unix_stream, unix_listener, unix_datagram, and unix_address.
#pragma once

#include <corio/detail/fd_owner.hpp>
#include <corio/detail/stream_base.hpp>
#include <corio/net/incoming.hpp>
#include <corio/net/socket_ops.hpp>
#include <corio/net/tcp.hpp>

#include <fmt/format.h>

#include <sys/socket.h>
#include <sys/un.h>

#include <chrono>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace corio::net {

/// A Unix socket address: a filesystem path, a name in the abstract namespace (Linux), or unnamed.
/// A value type, printable with operator<< and fmt (`{}` gives to_string()); it does no I/O.
class unix_address {
 public:
  /// Unnamed (an unbound or socketpair socket).
  unix_address() noexcept;
  /// A filesystem path; throws std::invalid_argument if empty or longer than sun_path allows.
  static unix_address path(std::string_view p);
  /// A name in the abstract namespace (no file); throws std::invalid_argument if too long.
  static unix_address abstract(std::string_view name);
  /// "@name" is abstract, anything else a path.
  static unix_address parse(std::string_view text);
  /// From a kernel sockaddr_un of `len` bytes (an unnamed address if it is not one).
  static unix_address from_native(const sockaddr* sa, socklen_t len) noexcept;

  /// True for an unnamed address (no path and no abstract name).
  bool unnamed() const noexcept { return len_ <= offsetof(sockaddr_un, sun_path); }
  /// True for a name in the abstract namespace.
  bool is_abstract() const noexcept { return !unnamed() && addr_.sun_path[0] == '\0'; }
  /// The path, or "@name" for an abstract name, or "(unnamed)".
  std::string to_string() const;

  /// Always AF_UNIX.
  int family() const noexcept { return AF_UNIX; }
  /// The kernel form, for system calls: size() bytes of a sockaddr_un.
  const sockaddr* native() const noexcept { return reinterpret_cast<const sockaddr*>(&addr_); }
  /// The length of native(), which is what tells an abstract name's end (no NUL terminator).
  socklen_t size() const noexcept { return len_; }
  /// The same kind of address with the same path or name.
  friend bool operator==(const unix_address& a, const unix_address& b) noexcept;

 private:
  sockaddr_un addr_;
  socklen_t len_;
};

/// Writes a.to_string().
std::ostream& operator<<(std::ostream& os, const unix_address& a);

/// A connected Unix stream socket, with the same operations, threads, cancellation and closing
/// rules as tcp_stream (read, read_exact, write, write_all, writev, the timeouts, close, ...).
class unix_stream : public corio::detail::stream_base {
 public:
  /// Not open.
  unix_stream() noexcept = default;
  /// Adopts a connected Unix stream socket.
  explicit unix_stream(int fd) noexcept;
  /// The same as the constructor: adopts a connected Unix stream socket.
  static unix_stream from_fd(int fd) noexcept { return unix_stream(fd); }

  /// The awaiter of connect(): owns the new socket until it is connected (and closes it if that
  /// fails), and supports `.nothrow()` and corio::timeout.
  using connect_op = detail::connect_op<unix_stream, unix_address>;
  /// `co_await unix_stream::connect(addr)`: a new connected stream (IORING_OP_CONNECT). Throws
  /// std::system_error naming the address (ENOENT, ECONNREFUSED, ...).
  [[nodiscard]] static connect_op connect(const unix_address& addr) {
    return connect_op(addr, SOCK_STREAM);
  }
  /// Parses `addr` as unix_address::parse does ("@name" abstract, else a path), then connects.
  [[nodiscard]] static connect_op connect(std::string_view addr) {
    return connect(unix_address::parse(addr));
  }
  /// Two connected streams (socketpair).
  static std::pair<unix_stream, unix_stream> pair();

  /// shutdown(2) now (a non-blocking system call): `write` makes the peer read an end of stream
  /// after the queued data. A socket that is not connected (ENOTCONN) is not an error.
  void shutdown(shutdown_how how);
  /// getsockname(2) (usually unnamed for a connecting side); throws std::system_error.
  unix_address local_address() const;
  /// getpeername(2); throws std::system_error.
  unix_address peer_address() const;
};

/// What unix_listener::accept and incoming().next() yield.
struct unix_accepted {
  unix_stream stream;  ///< The connection.
  unix_address peer;   ///< Its peer: usually unnamed (clients rarely bind).
  /// Adopts the accepted socket `fd` and asks for its peer (getpeername); used by incoming().
  static unix_accepted from_fd(int fd);
};

/// A listening Unix stream socket. Accepting follows the rules of tcp_listener (ring operations,
/// resuming on whichever worker reaps them, cancellable).
class unix_listener {
 public:
  /// Not open.
  unix_listener() noexcept = default;
  /// Takes over `other`'s socket (and the duty to unlink its socket file).
  unix_listener(unix_listener&&) noexcept = default;
  /// Takes over `other`'s socket. This listener's own socket is closed without waiting, and its
  /// socket file is not unlinked.
  unix_listener& operator=(unix_listener&&) noexcept = default;
  /// Unlinks the socket file of a path listener.
  ~unix_listener();

  /// Binds and listens. For a path: if a socket file is there and nobody answers on it (a server
  /// that died), it is replaced; if a live server answers, or the path is not a socket, binding
  /// fails with EADDRINUSE and the file is left alone.
  static unix_listener bind(const unix_address& addr, int backlog = 4096);
  /// Parses `addr` as unix_address::parse does ("@name" abstract, else a path), then binds.
  static unix_listener bind(std::string_view addr, int backlog = 4096);

  /// `co_await accept()`: the next connection and its peer address (one IORING_OP_ACCEPT).
  [[nodiscard]] detail::accept_op<unix_accepted, unix_address> accept() {
    return detail::accept_op<unix_accepted, unix_address>(fd_);
  }
  /// The connections as they arrive, from a multishot accept (see incoming_connections). Must
  /// not outlive the listener.
  [[nodiscard]] incoming_connections<unix_accepted> incoming() {
    return incoming_connections<unix_accepted>(fd_);
  }
  /// The address given to bind (no system call).
  unix_address local_address() const { return addr_; }
  /// Closes the listener: pending accepts (and incoming().next()) end.
  [[nodiscard]] corio::detail::close_op close() { return corio::detail::close_op(fd_); }
  /// The listening socket's fd, or -1 when not open; still owned by the listener.
  int native_handle() const noexcept { return fd_.get(); }

 private:
  corio::detail::fd_owner fd_;
  unix_address addr_;
  bool unlink_ = false;
};

/// What unix_datagram::recv_from yields: the datagram's size, its sender (often unnamed), and
/// whether it was longer than the buffer (`truncated`: the rest is lost).
using unix_datagram_received = detail::datagram<unix_address>;

/// A Unix datagram socket. Operations follow the rules of udp_socket: ring operations that resume
/// on whichever worker reaps them, cancellable, with optional timeouts. Unlike a path listener,
/// a bound datagram socket does not unlink its socket file.
class unix_datagram {
 public:
  /// Not open.
  unix_datagram() noexcept = default;
  /// Takes over `other`'s socket and timeouts.
  unix_datagram(unix_datagram&&) noexcept = default;
  /// Closes this socket (without waiting), then takes over `other`'s.
  unix_datagram& operator=(unix_datagram&&) noexcept = default;

  /// Bound to `addr` (a path that exists already fails with EADDRINUSE).
  static unix_datagram bind(const unix_address& addr);
  /// Parses `addr` as unix_address::parse does, then binds.
  static unix_datagram bind(std::string_view addr);
  /// An unbound socket, for sending.
  static unix_datagram unbound();
  /// Two connected datagram sockets (socketpair).
  static std::pair<unix_datagram, unix_datagram> pair();

  /// Fixes the peer (connect(2), no I/O): recv and send then work without addresses. Throws
  /// std::system_error (ENOENT, ECONNREFUSED, ...).
  void connect(const unix_address& peer);
  /// One datagram in (recvmsg), with its size, its sender, and whether it was truncated to `buf`.
  [[nodiscard]] detail::recv_from_op<unix_address> recv_from(std::span<std::byte> buf) {
    return {fd_, buf, read_timeout_ns_};
  }
  /// One datagram out to `to` (sendmsg); yields the bytes sent.
  [[nodiscard]] detail::send_to_op<unix_address> send_to(std::span<const std::byte> buf,
                                                         const unix_address& to) {
    return {fd_, buf, to, write_timeout_ns_};
  }
  /// On a connected socket: one datagram in (its size, truncated silently to the buffer).
  [[nodiscard]] corio::detail::transfer_op recv(std::span<std::byte> buf) {
    return corio::detail::transfer_op(fd_, detail::io_kind::recv, buf.data(), buf.size(), false,
                                      static_cast<std::uint64_t>(-1), read_timeout_ns_, "recv");
  }
  /// On a connected socket: one datagram out.
  [[nodiscard]] corio::detail::transfer_op send(std::span<const std::byte> buf) {
    return corio::detail::transfer_op(fd_, detail::io_kind::send,
                                      const_cast<std::byte*>(buf.data()), buf.size(), false,
                                      static_cast<std::uint64_t>(-1), write_timeout_ns_, "send");
  }
  /// A timeout applied to every later recv and recv_from (0: none); it throws corio::timed_out.
  template <class Rep, class Period>
  void set_read_timeout(std::chrono::duration<Rep, Period> d) noexcept {
    read_timeout_ns_ = corio::detail::duration_to_ns(d);
  }
  /// A timeout applied to every later send and send_to (0: none).
  template <class Rep, class Period>
  void set_write_timeout(std::chrono::duration<Rep, Period> d) noexcept {
    write_timeout_ns_ = corio::detail::duration_to_ns(d);
  }
  /// getsockname(2); throws std::system_error.
  unix_address local_address() const;
  /// Closes the socket, reporting close's error: operations of other tasks still in flight on it
  /// fail with corio::errc::stream_closed.
  [[nodiscard]] corio::detail::close_op close() { return corio::detail::close_op(fd_); }
  /// The fd, or -1 when not open; still owned by the socket.
  int native_handle() const noexcept { return fd_.get(); }

 private:
  corio::detail::fd_owner fd_;
  std::int64_t read_timeout_ns_ = 0;
  std::int64_t write_timeout_ns_ = 0;
};

}  // namespace corio::net

/// @cond
template <>
struct fmt::formatter<corio::net::unix_address> : fmt::formatter<std::string_view> {
  template <class FormatContext>
  auto format(const corio::net::unix_address& a, FormatContext& ctx) const {
    return fmt::formatter<std::string_view>::format(a.to_string(), ctx);
  }
};
/// @endcond
