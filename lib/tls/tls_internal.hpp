// What the TLS sources share: the context's state and OpenSSL's error queue as text.
#pragma once

#include <corio/tls.hpp>

#include <openssl/ssl.h>

#include <string>

namespace corio::tls {

/// Owns the SSL_CTX. `alpn_wire` is the ALPN list in wire format (length-prefixed names); the
/// server's selection callback reads it, so it lives as long as the SSL_CTX does.
struct context::state {
  SSL_CTX* ctx = nullptr;
  bool is_server = false;
  std::string alpn_wire;
  ~state() { SSL_CTX_free(ctx); }
};

namespace detail {

/// Empties this thread's OpenSSL error queue and returns its entries as "reason; reason"
/// (`fallback` when it is empty). Call it on the thread, and before the suspension, right after
/// the failing call: tasks migrate between workers and the queue is per thread.
std::string take_errors(const char* fallback = "unknown error");

/// Throws tls::error(EPROTO) with "`what`: <OpenSSL's reasons>".
[[noreturn]] void throw_ssl(const std::string& what);

}  // namespace detail

}  // namespace corio::tls
