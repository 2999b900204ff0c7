#include "socket_util.hpp"

#include <corio/net/udp.hpp>

#include <fmt/format.h>

#include <sys/socket.h>

#include <cerrno>
#include <stdexcept>

namespace corio::net {

using corio::detail::fd_owner;

udp_socket udp_socket::bind(const socket_address& addr) {
  std::string what = fmt::format("bind {}", addr.to_string());
  if (addr.empty()) throw std::invalid_argument(fmt::format("corio: {}: empty address", what));
  udp_socket u;
  u.fd_ = fd_owner(detail::make_socket(addr.family(), SOCK_DGRAM, what), fd_owner::kind::socket);
  if (::bind(u.fd_.get(), addr.native(), addr.size()) != 0) detail::throw_errno(errno, what);
  return u;
}

udp_socket udp_socket::bind(std::string_view addr) {
  return bind(socket_address::parse(addr));
}

udp_socket udp_socket::open(int family) {
  if (family != AF_INET && family != AF_INET6) {
    throw std::invalid_argument("corio: udp_socket::open: family must be AF_INET or AF_INET6");
  }
  udp_socket u;
  u.fd_ = fd_owner(detail::make_socket(family, SOCK_DGRAM, "udp socket"), fd_owner::kind::socket);
  return u;
}

void udp_socket::connect(const socket_address& peer) {
  if (::connect(fd_.get(), peer.native(), peer.size()) != 0) {
    detail::throw_errno(errno, fmt::format("connect udp fd {} to {}", fd_.get(), peer.to_string()));
  }
}

socket_address udp_socket::local_address() const {
  return detail::local_of(fd_.get());
}

}  // namespace corio::net
