#include "tls_internal.hpp"

#include <openssl/err.h>

#include <cerrno>

namespace corio::tls::detail {

std::string take_errors(const char* fallback) {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    // "error:0A000086:SSL routines::certificate verify failed": keep the reason at the end.
    std::string_view text(buf);
    auto colon = text.rfind(':');
    if (colon != std::string_view::npos && colon + 1 < text.size()) text.remove_prefix(colon + 1);
    if (!out.empty()) out += "; ";
    out += text;
  }
  return out.empty() ? std::string(fallback) : out;
}

void throw_ssl(const std::string& what) {
  throw error(EPROTO, what + ": " + take_errors());
}

}  // namespace corio::tls::detail
