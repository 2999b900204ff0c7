#include "socket_util.hpp"

#include <corio/net/unix.hpp>

#include <fmt/format.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace corio::net {

using corio::detail::fd_owner;
using corio::detail::io_kind;

namespace {

unix_address with_name(std::string_view name, bool abstract) {
  sockaddr_un sun{};
  std::size_t cap = sizeof sun.sun_path - (abstract ? 1 : 1);  // a path keeps its NUL
  if (name.empty() || name.size() > cap) {
    throw std::invalid_argument(
        fmt::format("corio: unix socket name '{}' must be 1 to {} bytes", name, cap));
  }
  sun.sun_family = AF_UNIX;
  std::size_t off = abstract ? 1 : 0;
  std::memcpy(sun.sun_path + off, name.data(), name.size());
  socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + off + name.size() +
                                         (abstract ? 0 : 1));
  return unix_address::from_native(reinterpret_cast<sockaddr*>(&sun), len);
}

unix_address name_of(int fd, bool peer) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  int rc = peer ? ::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len)
                : ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  if (rc != 0)
    detail::throw_errno(errno,
                        fmt::format("{} on fd {}", peer ? "getpeername" : "getsockname", fd));
  return unix_address::from_native(reinterpret_cast<sockaddr*>(&ss), len);
}

}  // namespace

unix_address::unix_address() noexcept : addr_{}, len_(sizeof(sa_family_t)) {
  addr_.sun_family = AF_UNIX;
}

unix_address unix_address::path(std::string_view p) {
  return with_name(p, false);
}
unix_address unix_address::abstract(std::string_view name) {
  return with_name(name, true);
}
unix_address unix_address::parse(std::string_view text) {
  if (!text.empty() && text.front() == '@') return abstract(text.substr(1));
  return path(text);
}

unix_address unix_address::from_native(const sockaddr* sa, socklen_t len) noexcept {
  unix_address a;
  if (sa == nullptr || sa->sa_family != AF_UNIX || len > sizeof(sockaddr_un)) return a;
  std::memcpy(&a.addr_, sa, len);
  a.len_ = len;
  return a;
}

std::string unix_address::to_string() const {
  if (unnamed()) return "(unnamed)";
  std::size_t n = len_ - offsetof(sockaddr_un, sun_path);
  if (is_abstract()) return fmt::format("@{}", std::string_view(addr_.sun_path + 1, n - 1));
  return std::string(addr_.sun_path, ::strnlen(addr_.sun_path, n));
}

bool operator==(const unix_address& a, const unix_address& b) noexcept {
  return a.len_ == b.len_ && std::memcmp(&a.addr_, &b.addr_, a.len_) == 0;
}

std::ostream& operator<<(std::ostream& os, const unix_address& a) {
  return os << a.to_string();
}

unix_stream::unix_stream(int fd) noexcept
    : stream_base(fd, fd_owner::kind::socket, io_kind::recv, io_kind::send) {}

std::pair<unix_stream, unix_stream> unix_stream::pair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    detail::throw_errno(errno, "socketpair");
  }
  return {unix_stream(fds[0]), unix_stream(fds[1])};
}

void unix_stream::shutdown(shutdown_how how) {
  if (::shutdown(fd_.get(), static_cast<int>(how)) != 0 && errno != ENOTCONN) {
    detail::throw_errno(errno, fmt::format("shutdown on fd {}", fd_.get()));
  }
}

unix_address unix_stream::local_address() const {
  return name_of(fd_.get(), false);
}
unix_address unix_stream::peer_address() const {
  return name_of(fd_.get(), true);
}

unix_accepted unix_accepted::from_fd(int fd) {
  unix_accepted a{unix_stream(fd), {}};
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
    a.peer = unix_address::from_native(reinterpret_cast<sockaddr*>(&ss), len);
  }
  return a;
}

unix_listener unix_listener::bind(const unix_address& addr, int backlog) {
  std::string what = fmt::format("bind unix {}", addr.to_string());
  unix_listener l;
  l.fd_ = fd_owner(detail::make_socket(AF_UNIX, SOCK_STREAM, what), fd_owner::kind::socket);
  l.addr_ = addr;
  int fd = l.fd_.get();
  if (::bind(fd, addr.native(), addr.size()) != 0) {
    int err = errno;
    if (err != EADDRINUSE || addr.is_abstract() || addr.unnamed()) detail::throw_errno(err, what);
    // A file is in the way. Replace it only if it is a socket that nobody answers on (T21).
    std::string path = addr.to_string();
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) detail::throw_errno(err, what);
    int probe = detail::make_socket(AF_UNIX, SOCK_STREAM, what);
    int rc = ::connect(probe, addr.native(), addr.size());
    int probe_err = errno;
    ::close(probe);
    if (rc == 0 || probe_err != ECONNREFUSED) {
      detail::throw_errno(EADDRINUSE, fmt::format("{} (a server answers there)", what));
    }
    ::unlink(path.c_str());
    if (::bind(fd, addr.native(), addr.size()) != 0) detail::throw_errno(errno, what);
  }
  l.unlink_ = !addr.is_abstract() && !addr.unnamed();
  if (::listen(fd, backlog) != 0) {
    detail::throw_errno(errno, fmt::format("listen on unix {}", addr.to_string()));
  }
  return l;
}

unix_listener unix_listener::bind(std::string_view addr, int backlog) {
  return bind(unix_address::parse(addr), backlog);
}

unix_listener::~unix_listener() {
  if (unlink_ && fd_.get() >= 0) ::unlink(addr_.to_string().c_str());
}

unix_datagram unix_datagram::bind(const unix_address& addr) {
  std::string what = fmt::format("bind unix datagram {}", addr.to_string());
  unix_datagram d;
  d.fd_ = fd_owner(detail::make_socket(AF_UNIX, SOCK_DGRAM, what), fd_owner::kind::socket);
  if (::bind(d.fd_.get(), addr.native(), addr.size()) != 0) detail::throw_errno(errno, what);
  return d;
}

unix_datagram unix_datagram::bind(std::string_view addr) {
  return bind(unix_address::parse(addr));
}

unix_datagram unix_datagram::unbound() {
  unix_datagram d;
  d.fd_ = fd_owner(detail::make_socket(AF_UNIX, SOCK_DGRAM, "unix datagram socket"),
                   fd_owner::kind::socket);
  return d;
}

std::pair<unix_datagram, unix_datagram> unix_datagram::pair() {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, fds) != 0) {
    detail::throw_errno(errno, "socketpair (datagram)");
  }
  std::pair<unix_datagram, unix_datagram> p;
  p.first.fd_ = fd_owner(fds[0], fd_owner::kind::socket);
  p.second.fd_ = fd_owner(fds[1], fd_owner::kind::socket);
  return p;
}

void unix_datagram::connect(const unix_address& peer) {
  if (::connect(fd_.get(), peer.native(), peer.size()) != 0) {
    detail::throw_errno(
        errno, fmt::format("connect unix datagram fd {} to {}", fd_.get(), peer.to_string()));
  }
}

unix_address unix_datagram::local_address() const {
  return name_of(fd_.get(), false);
}

}  // namespace corio::net
