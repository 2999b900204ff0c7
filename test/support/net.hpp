// Loopback helpers for the networking tests (plain system calls, outside the runtime).
#pragma once

#include <corio/net/address.hpp>
#include <corio/runtime.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

namespace corio::test {

/// `size` bytes of a pattern that depends on `seed`, so that misplaced bytes show.
inline std::vector<std::byte> pattern(std::size_t size, unsigned seed) {
  std::vector<std::byte> v(size);
  std::uint32_t x = seed * 2654435761u + 1;
  for (auto& b : v) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b = static_cast<std::byte>(x);
  }
  return v;
}

/// The runtime's CQEs reaped minus its SQEs submitted. A zero-copy send adds one (its
/// notification, a second CQE); on one worker, once they completed, other operations add
/// nothing (with several, MSG_RING wake-ups are CQEs without an SQE).
inline long cqes_beyond_sqes(const corio::runtime& rt) {
  corio::worker_stats t = rt.stats().total();
  return static_cast<long>(t.cqes_reaped) - static_cast<long>(t.sqes_submitted);
}

/// SO_SNDBUF and SO_RCVBUF of `bytes`: forces partial reads and writes.
inline void set_buffers(int fd, int bytes) {
  ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof bytes);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);
}

/// SO_LINGER {1, 0}: closing sends an RST instead of a FIN.
inline void reset_on_close(int fd) {
  linger l{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

/// A loopback port nothing listens on (bound and released; racy only against other processes).
inline std::uint16_t unused_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

inline bool ipv6_available() {
  int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

/// A listener (backlog 0) that never accepts, with its accept queue filled: the kernel drops
/// further SYNs, so a connect to it hangs until its timeout (T22).
class full_listener {
 public:
  full_listener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    addr_ = corio::net::socket_address::from_native(reinterpret_cast<sockaddr*>(&a), len);
    for (int i = 0; i < 16; ++i) {
      int c = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      fillers_.push_back(c);
      ::connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a);
      pollfd p{c, POLLOUT, 0};
      if (::poll(&p, 1, 100) == 0) return;  // this one hangs: the queue is full
    }
    throw std::runtime_error("could not fill the accept queue (tcp_abort_on_overflow set?)");
  }
  ~full_listener() {
    for (int c : fillers_) ::close(c);
    ::close(fd_);
  }
  full_listener(const full_listener&) = delete;
  full_listener& operator=(const full_listener&) = delete;
  corio::net::socket_address address() const { return addr_; }

 private:
  int fd_ = -1;
  std::vector<int> fillers_;
  corio::net::socket_address addr_;
};

}  // namespace corio::test
