// corio::tls: TLS streams over corio's own socket operations (OpenSSL with memory BIOs).
//
//   auto ctx = corio::tls::context::server_from_pem("cert.pem", "key.pem");
//   auto tls = co_await corio::tls::accept(ctx, std::move(tcp));
//   std::size_t n = co_await tls.read(buf);
//   co_await tls.write_all(bytes);
//   co_await tls.shutdown();
//   auto c = co_await corio::tls::connect(corio::tls::context::client(), std::move(tcp), "host");
//
// OpenSSL never touches the socket: it encrypts into and decrypts from memory buffers, and the
// ciphertext moves through the socket's io_uring operations, so a handshake or a read never
// blocks a worker, and `corio::timeout`, per-stream timeouts and cancellation apply to every step.
// Built only with the `tls` Meson option (OpenSSL from libssl-dev); this header includes no
// OpenSSL header.
#pragma once

#include <corio/net/tcp.hpp>
#include <corio/task.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

struct ssl_ctx_st;

namespace corio::tls {

/// A TLS failure: a failed handshake, a protocol error or an unusable certificate. A
/// std::system_error with EPROTO (or the errno of a file that could not be read) whose what()
/// names the operation, the peer and OpenSSL's reason ("certificate verify failed: certificate
/// has expired").
class error : public std::system_error {
 public:
  /// An error with `errno_value` in the generic category, the message `what`, and the
  /// certificate verification result (0 when verification was not the cause).
  error(int errno_value, const std::string& what, long verify_result = 0)
      : std::system_error(errno_value, std::generic_category(), what),
        verify_result_(verify_result) {}
  /// The certificate verification result (X509_V_OK = 0 when verification was not the cause).
  long verify_result() const noexcept { return verify_result_; }

 private:
  long verify_result_ = 0;
};

/// How a client checks the server.
struct client_options {
  /// Verify the server's certificate chain and its name (the host given to connect). Turning
  /// it off accepts any certificate: for tests only.
  bool verify = true;
  /// PEM file of the certificate authorities to trust; empty: the system's trust store.
  std::string ca_file = {};
};

/// Certificates, keys and settings shared by many streams (an SSL_CTX). A cheap handle: copies
/// share the same context. Thread-safe to use from any worker once configured.
class context {
 public:
  /// A server context with a certificate chain and a private key, both PEM files. Throws
  /// tls::error naming the file and the reason (missing file, bad PEM, key not matching).
  static context server_from_pem(const std::string& cert_chain_file, const std::string& key_file);
  /// A server context from a PKCS#12 bundle (certificate, key, chain). A wrong password throws.
  static context server_from_pkcs12(const std::string& path, const std::string& password);
  /// A client context that verifies server certificates against the system trust store.
  static context client();
  /// A client context with `options` (a CA file of its own, or no verification).
  static context client(const client_options& options);

  /// The application protocols (ALPN, e.g. {"http/1.1"}): a client offers them, a server picks
  /// the first of its list that the client offers (and accepts clients offering none). Set it
  /// before the context is used: configuring is not synchronised with handshakes.
  void set_alpn(const std::vector<std::string>& protocols);

  /// The OpenSSL SSL_CTX, for settings corio has no function for; null for a moved-from
  /// context. Changing it while streams use it is not synchronised.
  ssl_ctx_st* native_handle() const noexcept;
  /// @cond
  struct state;
  /// @endcond

 private:
  explicit context(std::shared_ptr<state> s) noexcept : s_(std::move(s)) {}
  std::shared_ptr<state> s_;
  friend class stream;
};

/// An established TLS connection over a tcp_stream.
///
/// Reads and writes are corio tasks. One task may read while another writes, on any workers
/// (a WebSocket server's pattern): the TLS state is guarded by a short lock that is never held
/// across a suspension, and encrypted records are sent in the order they were made. Two
/// concurrent readers, or two concurrent writers, are not allowed.
///
/// A read or handshake that is cancelled or times out while waiting for the socket leaves the
/// stream usable. A write that is cancelled or fails after its bytes were encrypted leaves the
/// peer with part of a record: the stream's write side is then broken, and later writes throw.
///
/// Every operation is a task that awaits ring operations on the socket: it resumes on whichever
/// worker completes them (or steals the task), and cancellation (join_handle::cancel,
/// corio::timeout, the socket timeouts) surfaces as corio::operation_cancelled (timed_out).
/// On an empty (default-constructed or moved-from) stream, every operation and accessor but
/// is_open() throws std::logic_error.
class stream {
 public:
  /// An empty stream; streams come from tls::accept and tls::connect.
  stream() noexcept;
  /// Takes over `other`'s session; `other` is left empty. Operations already running go on.
  stream(stream&&) noexcept;
  /// Ends this stream's session as the destructor does, then takes over `other`'s.
  stream& operator=(stream&&) noexcept;
  /// Frees the session and closes the socket without waiting (and without close_notify).
  ~stream();

  /// Decrypted bytes, up to `buf.size()`; 0 when the peer ended the session with close_notify.
  /// An end of the TCP stream without close_notify throws std::system_error with
  /// corio::errc::unexpected_eof (a truncation attack cannot pass as a clean end).
  [[nodiscard]] task<std::size_t> read(std::span<std::byte> buf);
  /// Decrypted bytes until `buf` is full; returns its size. A close_notify before that throws
  /// std::system_error with corio::errc::unexpected_eof, naming how many bytes came; so does an
  /// end of the TCP stream, as for read().
  [[nodiscard]] task<std::size_t> read_exact(std::span<std::byte> buf);
  /// Encrypts and sends up to 64 KiB of `buf`; returns how many bytes were taken.
  [[nodiscard]] task<std::size_t> write(std::span<const std::byte> buf);
  /// Encrypts and sends all of `buf`; returns its size.
  [[nodiscard]] task<std::size_t> write_all(std::span<const std::byte> buf);
  /// Encrypts and sends all of `text`; returns its size.
  [[nodiscard]] task<std::size_t> write_all(std::string_view text) {
    return write_all(std::as_bytes(std::span(text.data(), text.size())));
  }
  /// Sends close_notify (the peer's read returns 0). The TCP connection stays open until close()
  /// or destruction; reading after shutdown still returns what the peer sends.
  [[nodiscard]] task<> shutdown();
  /// Closes the socket (without close_notify; call shutdown() first for a clean end).
  [[nodiscard]] task<> close();

  /// Timeouts for every later socket read or write made by this stream (0: none); they surface
  /// as corio::timed_out.
  template <class Rep, class Period>
  void set_read_timeout(std::chrono::duration<Rep, Period> d) {
    socket().set_read_timeout(d);
  }
  /// The write-side counterpart of set_read_timeout.
  template <class Rep, class Period>
  void set_write_timeout(std::chrono::duration<Rep, Period> d) {
    socket().set_write_timeout(d);
  }

  /// False for an empty stream or once its socket was closed.
  bool is_open() const noexcept;
  /// The TCP socket underneath. Reading or writing it directly corrupts the TLS session.
  net::tcp_stream& socket();
  /// The socket's peer address (getpeername); throws std::system_error.
  net::socket_address peer_address() const;
  /// The socket's local address (getsockname); throws std::system_error.
  net::socket_address local_address() const;
  /// The negotiated protocol version ("TLSv1.3").
  std::string version() const;
  /// The negotiated application protocol (ALPN, e.g. "http/1.1"); "" when none was agreed.
  std::string alpn() const;

  /// @cond
  struct state;
  /// @endcond

 private:
  explicit stream(std::unique_ptr<state> s) noexcept;
  // The state lives on the heap: running operations refer to it, not to this handle, so moving
  // a stream never invalidates them.
  std::unique_ptr<state> s_;
  friend task<stream> accept(context ctx, net::tcp_stream tcp);
  friend task<stream> connect(context ctx, net::tcp_stream tcp, std::string host);
};

/// The server side of a handshake on `tcp`. Throws tls::error (the client's protocol or
/// certificate was refused, garbage instead of a ClientHello) or the socket's errors; bound it
/// with corio::timeout against clients that never finish.
[[nodiscard]] task<stream> accept(context ctx, net::tcp_stream tcp);
/// The client side: sends `host` as SNI and, when the context verifies, checks the server's
/// certificate for `host` (a DNS name or an IP address literal).
[[nodiscard]] task<stream> connect(context ctx, net::tcp_stream tcp, std::string host);

}  // namespace corio::tls
