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
  static unix_address from_native(const sockaddr* sa, socklen_t len) noexcept;

  bool unnamed() const noexcept { return len_ <= offsetof(sockaddr_un, sun_path); }
  bool is_abstract() const noexcept { return !unnamed() && addr_.sun_path[0] == '\0'; }
  /// The path, or "@name" for an abstract name, or "(unnamed)".
  std::string to_string() const;

  int family() const noexcept { return AF_UNIX; }
  const sockaddr* native() const noexcept { return reinterpret_cast<const sockaddr*>(&addr_); }
  socklen_t size() const noexcept { return len_; }
  friend bool operator==(const unix_address& a, const unix_address& b) noexcept;

 private:
  sockaddr_un addr_;
  socklen_t len_;
};

std::ostream& operator<<(std::ostream& os, const unix_address& a);

/// A connected Unix stream socket; the same operations as tcp_stream.
class unix_stream : public corio::detail::stream_base {
 public:
  unix_stream() noexcept = default;
  /// Adopts a connected Unix stream socket.
  explicit unix_stream(int fd) noexcept;
  static unix_stream from_fd(int fd) noexcept { return unix_stream(fd); }

  using connect_op = detail::connect_op<unix_stream, unix_address>;
  [[nodiscard]] static connect_op connect(const unix_address& addr) {
    return connect_op(addr, SOCK_STREAM);
  }
  [[nodiscard]] static connect_op connect(std::string_view addr) {
    return connect(unix_address::parse(addr));
  }
  /// Two connected streams (socketpair).
  static std::pair<unix_stream, unix_stream> pair();

  void shutdown(shutdown_how how);
  unix_address local_address() const;
  unix_address peer_address() const;
};

struct unix_accepted {
  unix_stream stream;
  unix_address peer;
  static unix_accepted from_fd(int fd);
};

/// A listening Unix stream socket.
class unix_listener {
 public:
  unix_listener() noexcept = default;
  unix_listener(unix_listener&&) noexcept = default;
  unix_listener& operator=(unix_listener&&) noexcept = default;
  /// Unlinks the socket file of a path listener.
  ~unix_listener();

  /// Binds and listens. For a path: if a socket file is there and nobody answers on it (a server
  /// that died), it is replaced; if a live server answers, or the path is not a socket, binding
  /// fails with EADDRINUSE and the file is left alone.
  static unix_listener bind(const unix_address& addr, int backlog = 4096);
  static unix_listener bind(std::string_view addr, int backlog = 4096);

  [[nodiscard]] detail::accept_op<unix_accepted, unix_address> accept() {
    return detail::accept_op<unix_accepted, unix_address>(fd_);
  }
  [[nodiscard]] incoming_connections<unix_accepted> incoming() {
    return incoming_connections<unix_accepted>(fd_);
  }
  unix_address local_address() const { return addr_; }
  [[nodiscard]] corio::detail::close_op close() { return corio::detail::close_op(fd_); }
  int native_handle() const noexcept { return fd_.get(); }

 private:
  corio::detail::fd_owner fd_;
  unix_address addr_;
  bool unlink_ = false;
};

using unix_datagram_received = detail::datagram<unix_address>;

/// A Unix datagram socket.
class unix_datagram {
 public:
  unix_datagram() noexcept = default;
  unix_datagram(unix_datagram&&) noexcept = default;
  unix_datagram& operator=(unix_datagram&&) noexcept = default;

  /// Bound to `addr` (a path that exists already fails with EADDRINUSE).
  static unix_datagram bind(const unix_address& addr);
  static unix_datagram bind(std::string_view addr);
  /// An unbound socket, for sending.
  static unix_datagram unbound();
  /// Two connected datagram sockets (socketpair).
  static std::pair<unix_datagram, unix_datagram> pair();

  void connect(const unix_address& peer);
  [[nodiscard]] detail::recv_from_op<unix_address> recv_from(std::span<std::byte> buf) {
    return {fd_, buf, read_timeout_ns_};
  }
  [[nodiscard]] detail::send_to_op<unix_address> send_to(std::span<const std::byte> buf,
                                                         const unix_address& to) {
    return {fd_, buf, to, write_timeout_ns_};
  }
  [[nodiscard]] corio::detail::transfer_op recv(std::span<std::byte> buf) {
    return corio::detail::transfer_op(fd_, detail::io_kind::recv, buf.data(), buf.size(), false,
                                      static_cast<std::uint64_t>(-1), read_timeout_ns_, "recv");
  }
  [[nodiscard]] corio::detail::transfer_op send(std::span<const std::byte> buf) {
    return corio::detail::transfer_op(fd_, detail::io_kind::send,
                                      const_cast<std::byte*>(buf.data()), buf.size(), false,
                                      static_cast<std::uint64_t>(-1), write_timeout_ns_, "send");
  }
  template <class Rep, class Period>
  void set_read_timeout(std::chrono::duration<Rep, Period> d) noexcept {
    read_timeout_ns_ = corio::detail::duration_to_ns(d);
  }
  template <class Rep, class Period>
  void set_write_timeout(std::chrono::duration<Rep, Period> d) noexcept {
    write_timeout_ns_ = corio::detail::duration_to_ns(d);
  }
  unix_address local_address() const;
  [[nodiscard]] corio::detail::close_op close() { return corio::detail::close_op(fd_); }
  int native_handle() const noexcept { return fd_.get(); }

 private:
  corio::detail::fd_owner fd_;
  std::int64_t read_timeout_ns_ = 0;
  std::int64_t write_timeout_ns_ = 0;
};

}  // namespace corio::net

template <>
struct fmt::formatter<corio::net::unix_address> : fmt::formatter<std::string_view> {
  template <class FormatContext>
  auto format(const corio::net::unix_address& a, FormatContext& ctx) const {
    return fmt::formatter<std::string_view>::format(a.to_string(), ctx);
  }
};
