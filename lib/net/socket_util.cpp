#include "socket_util.hpp"

#include <fmt/format.h>

#include <sys/socket.h>

#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace corio::net::detail {

void throw_errno(int err, const std::string& what) {
  throw std::system_error(err, std::generic_category(), fmt::format("corio: {}", what));
}

int make_socket(int family, int type, const std::string& what) {
  int fd = ::socket(family, type | SOCK_CLOEXEC, 0);
  if (fd < 0) throw_errno(errno, fmt::format("{}: socket()", what));
  return fd;
}

void set_int_option(int fd, int level, int opt, int value, const char* what) {
  if (::setsockopt(fd, level, opt, &value, sizeof value) != 0) {
    throw_errno(errno, fmt::format("{} on fd {}", what, fd));
  }
}

socket_address local_of(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    throw_errno(errno, fmt::format("getsockname on fd {}", fd));
  }
  return socket_address::from_native(reinterpret_cast<sockaddr*>(&ss), len);
}

socket_address peer_of(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    throw_errno(errno, fmt::format("getpeername on fd {}", fd));
  }
  return socket_address::from_native(reinterpret_cast<sockaddr*>(&ss), len);
}

}  // namespace corio::net::detail

namespace corio::net::detail {

int open_socket(int family, int type, int& err) noexcept {
  int fd = ::socket(family, type | SOCK_CLOEXEC, 0);
  err = fd < 0 ? errno : 0;
  return fd;
}

void close_unused(int fd) noexcept {
  ::close(fd);
}

}  // namespace corio::net::detail
