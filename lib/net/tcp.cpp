#include "socket_util.hpp"

#include <corio/net/tcp.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cstring>

namespace corio::net {

using corio::detail::fd_owner;
using corio::detail::io_kind;

tcp_stream::tcp_stream(int fd) noexcept
    : stream_base(fd, fd_owner::kind::socket, io_kind::recv, io_kind::send) {}

void tcp_stream::set_nodelay(bool on) {
  detail::set_int_option(fd_.get(), IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0, "set TCP_NODELAY");
}

void tcp_stream::shutdown(shutdown_how how) {
  if (::shutdown(fd_.get(), static_cast<int>(how)) != 0 && errno != ENOTCONN) {
    detail::throw_errno(errno, fmt::format("shutdown on fd {}", fd_.get()));
  }
}

socket_address tcp_stream::local_address() const {
  return detail::local_of(fd_.get());
}
socket_address tcp_stream::peer_address() const {
  return detail::peer_of(fd_.get());
}

tcp_accepted tcp_accepted::from_fd(int fd) {
  tcp_accepted a{tcp_stream(fd), {}};
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    a.peer = socket_address::from_native(reinterpret_cast<sockaddr*>(&ss), len);
  }  // a peer that already went away leaves the address empty; reads will report it
  return a;
}

tcp_listener tcp_listener::bind(const socket_address& addr, int backlog) {
  std::string what = fmt::format("bind {}", addr.to_string());
  if (addr.empty()) throw std::invalid_argument(fmt::format("corio: {}: empty address", what));
  int fd = detail::make_socket(addr.family(), SOCK_STREAM, what);
  tcp_listener l;
  l.fd_ = fd_owner(fd, fd_owner::kind::socket);
  detail::set_int_option(fd, SOL_SOCKET, SO_REUSEADDR, 1, "set SO_REUSEADDR");
  if (::bind(fd, addr.native(), addr.size()) != 0) detail::throw_errno(errno, what);
  if (::listen(fd, backlog) != 0)
    detail::throw_errno(errno, fmt::format("listen on {}", addr.to_string()));
  return l;
}

tcp_listener tcp_listener::bind(std::string_view addr, int backlog) {
  return bind(socket_address::parse(addr), backlog);
}

socket_address tcp_listener::local_address() const {
  return detail::local_of(fd_.get());
}

}  // namespace corio::net
