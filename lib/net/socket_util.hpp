// Small synchronous socket helpers shared by the TCP, UDP and Unix code. Every call here is a
// non-blocking system call (socket, bind, listen, setsockopt, getsockname): allowed on a worker.
#pragma once

#include <corio/net/address.hpp>

#include <string>

namespace corio::net::detail {

/// socket(2) with SOCK_CLOEXEC; throws std::system_error "<what>: ..." on failure.
int make_socket(int family, int type, const std::string& what);
/// Throws std::system_error(err, "corio: <what>").
[[noreturn]] void throw_errno(int err, const std::string& what);
/// setsockopt(level, opt, int value); throws on failure.
void set_int_option(int fd, int level, int opt, int value, const char* what);
socket_address local_of(int fd);
socket_address peer_of(int fd);

}  // namespace corio::net::detail
