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
class udp_socket {
 public:
  udp_socket() noexcept = default;
  udp_socket(udp_socket&&) noexcept = default;
  udp_socket& operator=(udp_socket&&) noexcept = default;

  /// A socket bound to `addr` ("0.0.0.0:0", "[::1]:9000"); throws std::system_error naming it.
  static udp_socket bind(const socket_address& addr);
  static udp_socket bind(std::string_view addr);
  /// An unbound socket of AF_INET or AF_INET6 (the kernel picks a port at the first send).
  static udp_socket open(int family = AF_INET);

  /// Fixes the peer (connect(2), no I/O): recv and send then work without addresses.
  void connect(const socket_address& peer);

  [[nodiscard]] detail::recv_from_op<socket_address> recv_from(std::span<std::byte> buf) {
    return {fd_, buf, read_timeout_ns_};
  }
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

  template <class Rep, class Period>
  void set_read_timeout(std::chrono::duration<Rep, Period> d) noexcept {
    read_timeout_ns_ = corio::detail::duration_to_ns(d);
  }
  template <class Rep, class Period>
  void set_write_timeout(std::chrono::duration<Rep, Period> d) noexcept {
    write_timeout_ns_ = corio::detail::duration_to_ns(d);
  }

  socket_address local_address() const;
  [[nodiscard]] corio::detail::close_op close() { return corio::detail::close_op(fd_); }
  bool is_open() const noexcept { return fd_.get() >= 0; }
  int native_handle() const noexcept { return fd_.get(); }

 private:
  corio::detail::fd_owner fd_;
  std::int64_t read_timeout_ns_ = 0;
  std::int64_t write_timeout_ns_ = 0;
};

}  // namespace corio::net
