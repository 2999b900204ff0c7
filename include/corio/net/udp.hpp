// corio::net::udp_socket.
#pragma once

#include <corio/detail/fd_owner.hpp>
#include <corio/detail/stream_base.hpp>
#include <corio/net/address.hpp>
#include <corio/net/socket_ops.hpp>

#include <chrono>
#include <span>
#include <string_view>

namespace corio::net {

/// What udp_socket::recv_from yields: the datagram's size, its sender, and whether it was longer
/// than the buffer (the rest is lost: `truncated`).
using udp_datagram = detail::datagram<socket_address>;

/// A UDP socket. Several tasks may receive on one socket at once (each datagram goes to one of
/// them). Operations throw std::system_error naming them and the fd, or yield corio::result<T>
/// through `.nothrow()`; a connected socket reports ICMP errors such as ECONNREFUSED on a later
/// operation, an unconnected one ignores them.
///
/// Operations are ring operations: a suspended one resumes on whichever worker reaps its
/// completion (or steals the task); a cancelled one (join_handle::cancel, corio::timeout, a
/// socket timeout) is withdrawn with IORING_OP_ASYNC_CANCEL and throws operation_cancelled
/// (timed_out) unless it completed first. Destroying the socket closes it without waiting.
class udp_socket {
 public:
  /// Not open.
  udp_socket() noexcept = default;
  /// Takes over `other`'s socket and timeouts.
  udp_socket(udp_socket&&) noexcept = default;
  /// Closes this socket (without waiting), then takes over `other`'s.
  udp_socket& operator=(udp_socket&&) noexcept = default;

  /// A socket bound to `addr` ("0.0.0.0:0", "[::1]:9000"); throws std::system_error naming it.
  static udp_socket bind(const socket_address& addr);
  /// Parses `addr` (std::invalid_argument if malformed), then binds.
  static udp_socket bind(std::string_view addr);
  /// An unbound socket of AF_INET or AF_INET6 (the kernel picks a port at the first send); any
  /// other family throws std::invalid_argument.
  static udp_socket open(int family = AF_INET);

  /// Fixes the peer (connect(2), no I/O): recv and send then work without addresses.
  void connect(const socket_address& peer);

  /// One datagram in (recvmsg), with its size, its sender, and whether it was truncated to
  /// `buf`. Waits until one arrives; several tasks may wait at once.
  [[nodiscard]] detail::recv_from_op<socket_address> recv_from(std::span<std::byte> buf) {
    return {fd_, buf, read_timeout_ns_};
  }
  /// One datagram out to `to` (sendmsg); yields the bytes sent. An error the kernel reports for
  /// the datagram (EMSGSIZE, ENETUNREACH...) throws; delivery is not confirmed.
  [[nodiscard]] detail::send_to_op<socket_address> send_to(std::span<const std::byte> buf,
                                                           const socket_address& to) {
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

  /// getsockname(2): the bound address (with the port the kernel picked); throws
  /// std::system_error.
  socket_address local_address() const;
  /// Closes the socket, reporting close's error: operations of other tasks still in flight on it
  /// fail with corio::errc::stream_closed.
  [[nodiscard]] corio::detail::close_op close() { return corio::detail::close_op(fd_); }
  /// False for a default-constructed, moved-from or closed socket.
  bool is_open() const noexcept { return fd_.get() >= 0; }
  /// The fd, or -1 when not open; still owned by the socket.
  int native_handle() const noexcept { return fd_.get(); }

 private:
  corio::detail::fd_owner fd_;
  std::int64_t read_timeout_ns_ = 0;
  std::int64_t write_timeout_ns_ = 0;
};

}  // namespace corio::net
