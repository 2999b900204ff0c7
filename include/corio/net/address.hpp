// corio::net::socket_address: an IPv4 or IPv6 address and port; and name resolution.
#pragma once

#include <corio/task.hpp>

#include <fmt/format.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace corio::net {

/// An IPv4 or IPv6 socket address (sockaddr_in / sockaddr_in6), a value type. Printable with
/// operator<< and fmt (`{}` gives to_string()). It does no I/O and no name lookup (see resolve).
class socket_address {
 public:
  /// An empty address (family AF_UNSPEC).
  socket_address() noexcept;

  /// Parses "a.b.c.d:port" or "[v6]:port" (numeric only; names go through resolve()). Throws
  /// std::invalid_argument naming the text and what is wrong.
  static socket_address parse(std::string_view text);
  /// The same, returning nullopt instead of throwing.
  static std::optional<socket_address> try_parse(std::string_view text) noexcept;
  /// A numeric IPv4 or IPv6 address ("127.0.0.1", "::1") and a port; throws std::invalid_argument.
  static socket_address from_ip(std::string_view ip, std::uint16_t port);
  /// From a kernel sockaddr of family AF_INET or AF_INET6 (else an empty address).
  static socket_address from_native(const sockaddr* sa, socklen_t len) noexcept;

  /// True for the empty address (family AF_UNSPEC).
  bool empty() const noexcept { return family() == AF_UNSPEC; }
  /// AF_INET, AF_INET6, or AF_UNSPEC when empty.
  int family() const noexcept { return storage_.ss_family; }
  /// True for an IPv4 address.
  bool is_v4() const noexcept { return family() == AF_INET; }
  /// True for an IPv6 address (an IPv4-mapped one included).
  bool is_v6() const noexcept { return family() == AF_INET6; }
  /// The port, in host byte order; 0 when empty.
  std::uint16_t port() const noexcept;
  /// The address without the port ("127.0.0.1", "::1").
  std::string ip() const;
  /// "a.b.c.d:port" or "[v6]:port"; "(empty)" for an empty address.
  std::string to_string() const;

  /// The kernel form, for system calls: size() bytes of a sockaddr_in or sockaddr_in6.
  const sockaddr* native() const noexcept { return reinterpret_cast<const sockaddr*>(&storage_); }
  /// The kernel form, writable (for a call that fills it in; size() does not change).
  sockaddr* native() noexcept { return reinterpret_cast<sockaddr*>(&storage_); }
  /// The length of native(): sizeof(sockaddr_in) or sizeof(sockaddr_in6); 0 when empty.
  socklen_t size() const noexcept { return len_; }

  /// Byte-wise equal kernel forms: family, address and port, and for IPv6 flow info and scope id.
  friend bool operator==(const socket_address& a, const socket_address& b) noexcept;

 private:
  sockaddr_storage storage_;
  socklen_t len_;
};

/// Writes a.to_string().
std::ostream& operator<<(std::ostream& os, const socket_address& a);

/// Resolves `host` (a name or a numeric address) for `port` with getaddrinfo on the runtime's
/// blocking pool, so no worker blocks. Returns every address found, IPv6 and IPv4, in the order
/// getaddrinfo gives; throws std::system_error (category: getaddrinfo's) naming the host when
/// resolution fails.
task<std::vector<socket_address>> resolve(std::string host, std::uint16_t port);

/// The error category of getaddrinfo's EAI_* codes.
const std::error_category& resolve_category() noexcept;

}  // namespace corio::net

/// @cond
template <>
struct fmt::formatter<corio::net::socket_address> : fmt::formatter<std::string_view> {
  template <class FormatContext>
  auto format(const corio::net::socket_address& a, FormatContext& ctx) const {
    return fmt::formatter<std::string_view>::format(a.to_string(), ctx);
  }
};
/// @endcond
