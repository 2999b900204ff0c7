// tls::stream: OpenSSL over two memory BIOs, with the ciphertext carried by the socket's
// io_uring operations.
//
// Invariants:
// - `ssl_lock` guards the SSL object and both BIOs. It is held only around OpenSSL calls, never
//   across a suspension, so a reader and a writer on different workers interleave safely. The
//   OpenSSL error queue is per thread: every section that can fail clears it first and turns
//   it into a message before unlocking (before the task can migrate).
// - Records leave `net_out` in the order OpenSSL made them: only the holder of `write_lock`
//   (a corio::mutex) drains `net_out` and writes to the socket, in a loop until it is empty.
// - Only the reader (one at a time) reads the socket and feeds `net_in`.
#include "tls_internal.hpp"

#include <corio/error.hpp>
#include <corio/sync/mutex.hpp>

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <mutex>
#include <utility>

namespace corio::tls {

using detail::take_errors;

namespace {

// One TLS record's ciphertext at most (16 KiB of data plus its overhead), so one socket read
// usually gives OpenSSL a whole record.
constexpr std::size_t io_chunk = 16 * 1024 + 512;
// A write encrypts at most this much before sending it: large writes stream through a bounded
// buffer instead of being encrypted whole into memory first.
constexpr std::size_t write_chunk = 64 * 1024;

}  // namespace

struct stream::state {
  context ctx;
  net::tcp_stream tcp;
  SSL* ssl = nullptr;
  BIO* net_in = nullptr;   // ciphertext from the peer, owned by `ssl`
  BIO* net_out = nullptr;  // ciphertext for the peer, owned by `ssl`
  std::mutex ssl_lock;
  corio::mutex write_lock;
  // A write was interrupted after encrypting: the peer has part of a record. Atomic: the
  // reader looks at it too.
  std::atomic<bool> write_broken{false};
  std::vector<std::byte> in_buf = std::vector<std::byte>(io_chunk);
  std::vector<std::byte> out_buf = std::vector<std::byte>(io_chunk);  // under write_lock
  std::string peer;                                                   // for messages

  state(context c, net::tcp_stream t) : ctx(std::move(c)), tcp(std::move(t)) {}
  ~state() { SSL_free(ssl); }

  // The outcome of one OpenSSL call, read under ssl_lock.
  struct step {
    int ret = 0;
    int error = SSL_ERROR_NONE;
    bool output = false;  // this call added records to net_out
    std::string message;  // the error queue, for SSL_ERROR_SSL and SSL_ERROR_SYSCALL
    long verify = X509_V_OK;
  };
  template <class F>
  step call(F&& f) {
    std::lock_guard lock(ssl_lock);
    ERR_clear_error();
    step s;
    std::size_t before = BIO_ctrl_pending(net_out);
    s.ret = f();
    if (s.ret <= 0) {
      s.error = SSL_get_error(ssl, s.ret);
      if (s.error == SSL_ERROR_SSL || s.error == SSL_ERROR_SYSCALL) {
        s.message = take_errors("protocol error");
        s.verify = SSL_get_verify_result(ssl);
        if (s.verify != X509_V_OK) {
          s.message += fmt::format(" ({})", X509_verify_cert_error_string(s.verify));
        }
      }
    }
    // Only what this call made: records a concurrent writer encrypted are its to send, and
    // waiting for its flush here would stall this reader behind a full socket.
    s.output = BIO_ctrl_pending(net_out) > before;
    return s;
  }

  [[noreturn]] void fail(const step& s, const char* what) const {
    throw error(EPROTO, fmt::format("TLS {} with {}: {}", what, peer, s.message), s.verify);
  }
};

namespace {

using state = stream::state;

// Sends every record waiting in net_out. Any failure -- a cancellation while waiting for the
// lock included, since the records this caller made would go out later or never -- leaves the
// peer with an unknown part of the stream, so it breaks the write side for good.
task<> flush(state& s) {
  try {
    auto guard = co_await s.write_lock.lock();
    for (;;) {
      int n;
      {
        std::lock_guard lock(s.ssl_lock);
        n = BIO_read(s.net_out, s.out_buf.data(), static_cast<int>(s.out_buf.size()));
      }
      if (n <= 0) break;
      co_await s.tcp.write_all(std::span(s.out_buf).first(static_cast<std::size_t>(n)));
    }
  } catch (...) {
    s.write_broken.store(true, std::memory_order_relaxed);
    throw;
  }
}

// Reads ciphertext from the socket into net_in; `what` names the caller for an early EOF.
task<> fill(state& s, const char* what) {
  std::size_t n = co_await s.tcp.read(s.in_buf);
  if (n == 0) {
    throw std::system_error(
        make_error_code(errc::unexpected_eof),
        fmt::format("TLS {} with {}: the peer closed the connection without close_notify", what,
                    s.peer));
  }
  std::lock_guard lock(s.ssl_lock);
  // A memory BIO grows as needed: the write takes everything unless memory runs out.
  if (BIO_write(s.net_in, s.in_buf.data(), static_cast<int>(n)) != static_cast<int>(n)) {
    throw error(ENOMEM,
                fmt::format("TLS {} with {}: buffering received data failed", what, s.peer));
  }
}

task<> handshake(state& s, const char* what) {
  for (;;) {
    auto st = s.call([&] { return SSL_do_handshake(s.ssl); });
    // Send what the handshake produced first, an alert included, so that a refused peer
    // learns why.
    if (st.output) {
      if (st.ret == 1 || st.error == SSL_ERROR_WANT_READ) {
        co_await flush(s);
      } else {
        try {
          co_await flush(s);
        } catch (const std::system_error&) {
        }
      }
    }
    if (st.ret == 1) co_return;
    if (st.error != SSL_ERROR_WANT_READ) s.fail(st, what);
    co_await fill(s, what);
  }
}

std::unique_ptr<state> new_session(context& ctx, net::tcp_stream& tcp) {
  auto s = std::make_unique<state>(ctx, std::move(tcp));
  try {
    s->peer = fmt::format("{}", s->tcp.peer_address());
  } catch (const std::system_error&) {
    s->peer = fmt::format("fd {}", s->tcp.native_handle());
  }
  ERR_clear_error();
  s->ssl = SSL_new(ctx.native_handle());
  if (s->ssl == nullptr) detail::throw_ssl("TLS: creating a session");
  s->net_in = BIO_new(BIO_s_mem());
  s->net_out = BIO_new(BIO_s_mem());
  if (s->net_in == nullptr || s->net_out == nullptr) {
    BIO_free(s->net_in);
    BIO_free(s->net_out);
    detail::throw_ssl("TLS: creating memory buffers");
  }
  // An empty net_in means "more is coming" (WANT_READ), not EOF: the socket decides EOF.
  BIO_set_mem_eof_return(s->net_in, -1);
  SSL_set_bio(s->ssl, s->net_in, s->net_out);
  return s;
}

bool is_ip_literal(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

}  // namespace

task<stream> accept(context ctx, net::tcp_stream tcp) {
  auto s = new_session(ctx, tcp);
  SSL_set_accept_state(s->ssl);
  co_await handshake(*s, "handshake");
  co_return stream(std::move(s));
}

task<stream> connect(context ctx, net::tcp_stream tcp, std::string host) {
  auto s = new_session(ctx, tcp);
  SSL_set_connect_state(s->ssl);
  bool ip = is_ip_literal(host);
  ERR_clear_error();
  if (!ip && !host.empty() && SSL_set_tlsext_host_name(s->ssl, host.c_str()) != 1) {
    detail::throw_ssl("TLS: setting the server name '" + host + "'");
  }
  if (SSL_get_verify_mode(s->ssl) & SSL_VERIFY_PEER) {
    if (host.empty()) throw error(EINVAL, "TLS connect: verifying the server needs its name");
    int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s->ssl), host.c_str())
                : SSL_set1_host(s->ssl, host.c_str());
    if (ok != 1) detail::throw_ssl("TLS: checking the server name '" + host + "'");
  }
  co_await handshake(*s, "handshake");
  co_return stream(std::move(s));
}

stream::stream() noexcept = default;
stream::stream(std::unique_ptr<state> s) noexcept : s_(std::move(s)) {}
stream::stream(stream&&) noexcept = default;
stream& stream::operator=(stream&&) noexcept = default;
stream::~stream() = default;

namespace {

state& must(const std::unique_ptr<state>& s) {
  if (!s) throw std::logic_error("corio::tls::stream: use of an empty (moved-from) stream");
  return *s;
}

task<std::size_t> read_some(state& s, std::span<std::byte> buf) {
  if (buf.empty()) co_return 0;
  for (;;) {
    std::size_t got = 0;
    auto st = s.call([&] { return SSL_read_ex(s.ssl, buf.data(), buf.size(), &got); });
    // TLS 1.3 may answer post-handshake messages (a KeyUpdate) from inside a read. Sending
    // that answer waits for a concurrent writer's flush: a peer that requests a key update
    // must keep reading, as TLS requires anyway.
    if (st.output && !s.write_broken.load(std::memory_order_relaxed)) co_await flush(s);
    if (st.ret == 1) co_return got;
    if (st.error == SSL_ERROR_ZERO_RETURN) co_return 0;
    if (st.error != SSL_ERROR_WANT_READ) s.fail(st, "read");
    co_await fill(s, "read");
  }
}

// Encrypts up to write_chunk bytes of `buf` and sends them.
task<std::size_t> write_some(state& s, std::span<const std::byte> buf) {
  if (s.write_broken.load(std::memory_order_relaxed)) {
    throw error(EPIPE, fmt::format("TLS write to {}: an earlier write was interrupted halfway; "
                                   "the stream cannot be written any more",
                                   s.peer));
  }
  std::size_t len = std::min(buf.size(), write_chunk), done = 0;
  auto st = s.call([&] { return SSL_write_ex(s.ssl, buf.data(), len, &done); });
  // With memory BIOs and no renegotiation, a write after the handshake needs nothing from the
  // peer: any failure is final.
  if (st.ret != 1) {
    if (st.message.empty()) st.message = fmt::format("SSL error {}", st.error);
    s.fail(st, "write");
  }
  co_await flush(s);
  co_return done;
}

}  // namespace

task<std::size_t> stream::read(std::span<std::byte> buf) {
  state& s = must(s_);
  co_return co_await read_some(s, buf);
}

task<std::size_t> stream::read_exact(std::span<std::byte> buf) {
  state& s = must(s_);
  std::size_t got = 0;
  while (got < buf.size()) {
    std::size_t n = co_await read_some(s, buf.subspan(got));
    if (n == 0) {
      throw std::system_error(make_error_code(errc::unexpected_eof),
                              fmt::format("TLS read_exact with {}: the peer ended the session "
                                          "(close_notify) after {} of {} bytes",
                                          s.peer, got, buf.size()));
    }
    got += n;
  }
  co_return got;
}

task<std::size_t> stream::write(std::span<const std::byte> buf) {
  state& s = must(s_);
  if (buf.empty()) co_return 0;
  co_return co_await write_some(s, buf);
}

task<std::size_t> stream::write_all(std::span<const std::byte> buf) {
  state& s = must(s_);
  std::size_t total = 0;
  while (total < buf.size()) total += co_await write_some(s, buf.subspan(total));
  co_return total;
}

task<> stream::shutdown() {
  state& s = must(s_);
  auto st = s.call([&] { return SSL_shutdown(s.ssl); });
  // 0: close_notify queued, the peer's not yet seen -- all a one-way shutdown needs.
  if (st.ret < 0 && st.error != SSL_ERROR_WANT_READ) s.fail(st, "shutdown");
  if (st.output) co_await flush(s);
}

task<> stream::close() {
  state& s = must(s_);
  co_await s.tcp.close();
}

bool stream::is_open() const noexcept {
  return s_ && s_->tcp.is_open();
}
net::tcp_stream& stream::socket() {
  return must(s_).tcp;
}
net::socket_address stream::peer_address() const {
  return must(s_).tcp.peer_address();
}
net::socket_address stream::local_address() const {
  return must(s_).tcp.local_address();
}

std::string stream::version() const {
  state& s = must(s_);
  std::lock_guard lock(s.ssl_lock);
  return SSL_get_version(s.ssl);
}

std::string stream::alpn() const {
  state& s = must(s_);
  std::lock_guard lock(s.ssl_lock);
  const unsigned char* p = nullptr;
  unsigned len = 0;
  SSL_get0_alpn_selected(s.ssl, &p, &len);
  return std::string(reinterpret_cast<const char*>(p), len);
}

}  // namespace corio::tls
