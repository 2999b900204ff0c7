// Socket awaiters shared by TCP, UDP and Unix sockets, generic over the address type
// (socket_address or unix_address: native(), size(), family(), from_native(), to_string()).
#pragma once

#include <corio/detail/fd_owner.hpp>
#include <corio/detail/io_awaiter.hpp>

#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <span>
#include <string>
#include <utility>

namespace corio::net::detail {

using corio::detail::fd_owner;
using corio::detail::io_args;
using corio::detail::io_awaiter;
using corio::detail::io_kind;
using corio::detail::io_state;

/// socket(family, type | SOCK_CLOEXEC); returns the fd, or -1 with the errno in `err`.
int open_socket(int family, int type, int& err) noexcept;
/// close(2) of an fd no ring ever saw.
void close_unused(int fd) noexcept;

template <class Address>
void describe_peer(const void* ctx, std::string& out) {
  out += " to ";
  out += static_cast<const Address*>(ctx)->to_string();
}

/// `co_await Stream::connect(addr)`: a new socket connected to `addr`. The socket is owned here
/// until the connection is established, and closed if it fails; the address lives here too, since
/// the kernel reads it when the SQE is submitted, after connect() returned (T05).
template <class Stream, class Address>
class connect_op : public io_awaiter<connect_op<Stream, Address>, Stream> {
 public:
  connect_op(const Address& addr, int type) : addr_(addr) {
    io_args& a = this->s_.args;
    a.kind = io_kind::connect;
    a.what = "connect";
    fd_ = open_socket(addr_.family(), type, a.setup_error);
    a.fd = fd_;
    point_at_own_address();
  }
  connect_op(connect_op&& o) noexcept
      : io_awaiter<connect_op, Stream>(std::move(o)),
        addr_(o.addr_),
        fd_(std::exchange(o.fd_, -1)) {
    point_at_own_address();
  }
  ~connect_op() {
    if (fd_ >= 0) close_unused(fd_);
  }
  Stream finish(io_state&, std::size_t) noexcept { return Stream::from_fd(std::exchange(fd_, -1)); }

 private:
  void point_at_own_address() noexcept {
    io_args& a = this->s_.args;
    a.addr = const_cast<sockaddr*>(addr_.native());
    a.addrlen = static_cast<unsigned>(addr_.size());
    a.describe = &describe_peer<Address>;
    a.describe_ctx = &addr_;
  }
  Address addr_;
  int fd_ = -1;
};

/// One IORING_OP_ACCEPT: the connection and its peer address.
template <class Accepted, class Address>
class accept_op : public io_awaiter<accept_op<Accepted, Address>, Accepted> {
 public:
  explicit accept_op(fd_owner& listener) noexcept {
    io_args& a = this->s_.args;
    a.kind = io_kind::accept;
    a.owner = &listener;
    a.what = "accept";
    point_at_own_address();
  }
  accept_op(accept_op&& o) noexcept
      : io_awaiter<accept_op, Accepted>(std::move(o)), peer_(o.peer_) {
    point_at_own_address();
  }
  Accepted finish(io_state& s, std::size_t fd) {
    return Accepted{decltype(Accepted::stream)::from_fd(static_cast<int>(fd)),
                    Address::from_native(reinterpret_cast<sockaddr*>(&peer_),
                                         static_cast<socklen_t>(s.args.addrlen))};
  }

 private:
  void point_at_own_address() noexcept {
    this->s_.args.addr = reinterpret_cast<sockaddr*>(&peer_);
    this->s_.args.addrlen = sizeof peer_;
  }
  sockaddr_storage peer_{};
};

/// A datagram received by recv_from: its size, its sender, and whether it was longer than the
/// buffer (MSG_TRUNC: the rest was discarded by the kernel).
template <class Address>
struct datagram {
  std::size_t size = 0;
  Address from;
  bool truncated = false;
};

/// recvmsg into one buffer, with the sender's address.
template <class Address>
class recv_from_op : public io_awaiter<recv_from_op<Address>, datagram<Address>> {
 public:
  recv_from_op(fd_owner& owner, std::span<std::byte> buf, std::int64_t timeout_ns) noexcept {
    iov_.iov_base = buf.data();
    iov_.iov_len = buf.size();
    io_args& a = this->s_.args;
    a.kind = io_kind::recvmsg;
    a.owner = &owner;
    a.what = "recv_from";
    a.timeout_ns = timeout_ns;
    point_at_own_message();
  }
  recv_from_op(recv_from_op&& o) noexcept
      : io_awaiter<recv_from_op, datagram<Address>>(std::move(o)), iov_(o.iov_) {
    point_at_own_message();
  }
  datagram<Address> finish(io_state&, std::size_t n) {
    return {n, Address::from_native(reinterpret_cast<sockaddr*>(&from_), msg_.msg_namelen),
            (msg_.msg_flags & MSG_TRUNC) != 0};
  }

 private:
  void point_at_own_message() noexcept {
    msg_ = {};
    msg_.msg_name = &from_;
    msg_.msg_namelen = sizeof from_;
    msg_.msg_iov = &iov_;
    msg_.msg_iovlen = 1;
    this->s_.args.msg = &msg_;
  }
  iovec iov_{};
  msghdr msg_{};
  sockaddr_storage from_{};
};

/// sendmsg of one buffer to an address (no SIGPIPE).
template <class Address>
class send_to_op : public io_awaiter<send_to_op<Address>, std::size_t> {
 public:
  send_to_op(fd_owner& owner, std::span<const std::byte> buf, const Address& to,
             std::int64_t timeout_ns) noexcept
      : to_(to) {
    iov_.iov_base = const_cast<std::byte*>(buf.data());
    iov_.iov_len = buf.size();
    io_args& a = this->s_.args;
    a.kind = io_kind::sendmsg;
    a.owner = &owner;
    a.what = "send_to";
    a.timeout_ns = timeout_ns;
    point_at_own_message();
  }
  send_to_op(send_to_op&& o) noexcept
      : io_awaiter<send_to_op, std::size_t>(std::move(o)), iov_(o.iov_), to_(o.to_) {
    point_at_own_message();
  }
  std::size_t finish(io_state&, std::size_t n) noexcept { return n; }

 private:
  void point_at_own_message() noexcept {
    msg_ = {};
    msg_.msg_name = const_cast<sockaddr*>(to_.native());
    msg_.msg_namelen = to_.size();
    msg_.msg_iov = &iov_;
    msg_.msg_iovlen = 1;
    io_args& a = this->s_.args;
    a.msg = &msg_;
    a.describe = &describe_peer<Address>;
    a.describe_ctx = &to_;
  }
  iovec iov_{};
  msghdr msg_{};
  Address to_;
};

}  // namespace corio::net::detail
