#include <corio/blocking.hpp>
#include <corio/net/address.hpp>

#include <fmt/format.h>

#include <arpa/inet.h>
#include <netdb.h>

#include <charconv>
#include <cstring>
#include <stdexcept>

namespace corio::net {

namespace {

std::optional<std::uint16_t> parse_port(std::string_view s) noexcept {
  unsigned v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || s.empty() || v > 65535)
    return std::nullopt;
  return static_cast<std::uint16_t>(v);
}

std::optional<socket_address> ip_and_port(std::string_view ip, std::uint16_t port) noexcept {
  char buf[INET6_ADDRSTRLEN + 1];
  if (ip.size() >= sizeof buf) return std::nullopt;
  std::memcpy(buf, ip.data(), ip.size());
  buf[ip.size()] = '\0';
  sockaddr_in in4{};
  if (inet_pton(AF_INET, buf, &in4.sin_addr) == 1) {
    in4.sin_family = AF_INET;
    in4.sin_port = htons(port);
    return socket_address::from_native(reinterpret_cast<sockaddr*>(&in4), sizeof in4);
  }
  sockaddr_in6 in6{};
  if (inet_pton(AF_INET6, buf, &in6.sin6_addr) == 1) {
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(port);
    return socket_address::from_native(reinterpret_cast<sockaddr*>(&in6), sizeof in6);
  }
  return std::nullopt;
}

class eai_category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "getaddrinfo"; }
  std::string message(int v) const override { return gai_strerror(v); }
};

}  // namespace

socket_address::socket_address() noexcept : storage_{}, len_(0) {
  storage_.ss_family = AF_UNSPEC;
}

socket_address socket_address::from_native(const sockaddr* sa, socklen_t len) noexcept {
  socket_address a;
  if (sa == nullptr) return a;
  if (sa->sa_family == AF_INET && len >= sizeof(sockaddr_in)) {
    std::memcpy(&a.storage_, sa, sizeof(sockaddr_in));
    a.len_ = sizeof(sockaddr_in);
  } else if (sa->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    std::memcpy(&a.storage_, sa, sizeof(sockaddr_in6));
    a.len_ = sizeof(sockaddr_in6);
  }
  return a;
}

std::optional<socket_address> socket_address::try_parse(std::string_view text) noexcept {
  std::string_view host, port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    if (host.find(':') == std::string_view::npos) return std::nullopt;  // brackets are for IPv6
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return std::nullopt;  // IPv6 needs brackets
  }
  auto p = parse_port(port);
  if (!p) return std::nullopt;
  auto a = ip_and_port(host, *p);
  if (!a || (text.front() == '[') != a->is_v6()) return std::nullopt;
  return a;
}

socket_address socket_address::parse(std::string_view text) {
  if (auto a = try_parse(text)) return *a;
  throw std::invalid_argument(fmt::format(
      "corio: '{}' is not a socket address: expected a.b.c.d:port or [ipv6]:port with a port "
      "0-65535 (use corio::net::resolve for host names)",
      text));
}

socket_address socket_address::from_ip(std::string_view ip, std::uint16_t port) {
  if (auto a = ip_and_port(ip, port)) return *a;
  throw std::invalid_argument(fmt::format("corio: '{}' is not a numeric IPv4 or IPv6 address", ip));
}

std::uint16_t socket_address::port() const noexcept {
  if (is_v4()) return ntohs(reinterpret_cast<const sockaddr_in*>(&storage_)->sin_port);
  if (is_v6()) return ntohs(reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_port);
  return 0;
}

std::string socket_address::ip() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (is_v4()) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&storage_)->sin_addr, buf, sizeof buf);
  } else if (is_v6()) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&storage_)->sin6_addr, buf,
              sizeof buf);
  }
  return buf;
}

std::string socket_address::to_string() const {
  if (is_v4()) return fmt::format("{}:{}", ip(), port());
  if (is_v6()) return fmt::format("[{}]:{}", ip(), port());
  return "(empty)";
}

bool operator==(const socket_address& a, const socket_address& b) noexcept {
  return a.len_ == b.len_ && std::memcmp(&a.storage_, &b.storage_, a.len_) == 0;
}

std::ostream& operator<<(std::ostream& os, const socket_address& a) {
  return os << a.to_string();
}

const std::error_category& resolve_category() noexcept {
  static const eai_category c;
  return c;
}

task<std::vector<socket_address>> resolve(std::string host, std::uint16_t port) {
  // The lambda gets its own statement: GCC 12 relocates a capturing lambda created inside a
  // co_await expression bitwise, which breaks a captured short std::string (see README).
  auto lookup = [host = std::move(host), port] {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_ADDRCONFIG;
    addrinfo* list = nullptr;
    int rc = getaddrinfo(host.c_str(), nullptr, &hints, &list);
    if (rc != 0) {
      throw std::system_error(rc == EAI_SYSTEM ? errno : rc,
                              rc == EAI_SYSTEM ? std::generic_category() : resolve_category(),
                              fmt::format("corio: resolve {}", host));
    }
    std::vector<socket_address> out;
    for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
      socket_address a = socket_address::from_native(ai->ai_addr, ai->ai_addrlen);
      if (a.empty()) continue;
      if (a.is_v4()) {
        reinterpret_cast<sockaddr_in*>(a.native())->sin_port = htons(port);
      } else {
        reinterpret_cast<sockaddr_in6*>(a.native())->sin6_port = htons(port);
      }
      out.push_back(a);
    }
    freeaddrinfo(list);
    return out;
  };
  co_return co_await spawn_blocking(std::move(lookup));
}

}  // namespace corio::net
