// HTTP/1.1 requests for the protocol samples (http_server, https_server, websocket_server):
// a parser over Debian's libhttp-parser (nodejs/http-parser) and a reader that pulls requests
// off any corio byte stream (tcp_stream, tls::stream), keeping bytes of pipelined requests.
//
// Ownership of the bytes:
//
//   stream --read--> request_reader::buf_ [begin_, end_) --feed--> parser --callbacks--> request
//
// The parser copies what it needs (target, headers, body) into its request as the bytes go by,
// so the read buffer holds only bytes not fed yet: after a complete request, the start of the
// next one (pipelining) or of an upgraded protocol. The request built by the parser is swapped
// with the caller's on completion, so both keep their string and vector capacity: a
// keep-alive connection stops allocating once it has seen its largest request.
#pragma once

#include <corio/corio.hpp>

#include <chrono>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace http {

struct header {
  std::string name;
  std::string value;
};

struct request {
  std::string_view method;  // "GET", "POST", ...: http-parser's name for it, a static string
  std::string target;       // the request target as sent ("/echo?x=1")
  unsigned version_major = 1;
  unsigned version_minor = 1;
  std::vector<header> headers;  // in arrival order, names as sent
  std::string body;             // decoded: Content-Length or chunked
  bool keep_alive = true;       // HTTP/1.1 default, Connection: close, HTTP/1.0 keep-alive
  bool upgrade = false;  // Connection: upgrade with an Upgrade header (or CONNECT): the bytes
                         // after the head belong to the new protocol (request_reader::buffered())

  /// The value of the first header called `name` (case-insensitive); empty if there is none.
  std::string_view get(std::string_view name) const;
  /// Whether header `name` (every occurrence, comma-separated) lists `token` (case-insensitive).
  bool has_token(std::string_view name, std::string_view token) const;
  /// Empties every field but keeps the capacity of the strings and of the header vector.
  void clear() noexcept;
  /// Field by field (std::swap's three moves would copy every short string twice more).
  friend void swap(request& a, request& b) noexcept;
};

/// What a server accepts. A request beyond these gets the status below and a closed connection.
struct limits {
  std::size_t max_head_bytes = 8 * 1024;           // request line + headers: else 431
  std::size_t max_body_bytes = 1024 * 1024;        // decoded body: else 413
  std::chrono::milliseconds head_timeout{10'000};  // from waiting for a request to its last
                                                   // header byte (idle or slow client): else 408
  std::chrono::milliseconds body_timeout{30'000};  // for the whole body: else 408
  // Reads into buffers of the worker's read pool where the stream has read_some_pooled (no
  // buffer of the connection's own while it waits); false: a 16 KiB buffer per connection.
  bool pooled_reads = true;
};

/// How reading a request ended. Each failure maps to the status line the server sends before
/// closing the connection.
enum class status {
  ok,                       // `out` holds a complete request
  closed,                   // the client closed the connection cleanly between requests
  bad_request,              // 400: malformed (the parser's error), or a truncated request
  payload_too_large,        // 413
  header_fields_too_large,  // 431
  request_timeout,          // 408
  not_implemented,          // 501: a Transfer-Encoding other than chunked
};
/// 400, 413, ... for a failure; 0 for ok and closed.
int status_code(status s) noexcept;
std::string_view reason_phrase(int code) noexcept;

/// The stream-independent part: feeds bytes to http-parser and builds requests.
///
/// Strictness beyond http-parser's own (which rejects malformed request lines and headers,
/// invalid chunk sizes, two Content-Lengths, and Content-Length with Transfer-Encoding):
/// - the head may take at most limits::max_head_bytes (431), trailers too;
/// - a body may take at most limits::max_body_bytes (413), checked against Content-Length
///   before any body byte arrives and against each chunk's size as it is announced;
/// - Transfer-Encoding must be exactly "chunked" (anything else is 501: we decode no gzip);
/// - the HTTP major version must be 1 (400).
/// Chunk extensions are skipped and trailers are dropped (RFC 9112 allows both).
class parser {
 public:
  explicit parser(const limits& l);
  ~parser();
  parser(const parser&) = delete;
  parser& operator=(const parser&) = delete;

  /// Feeds `data`; returns how many bytes were used. Stops right after a complete request, so
  /// the bytes of a pipelined next request (or of an upgraded protocol) are left unused. Unless
  /// a request completed or an error was seen, every byte is used.
  std::size_t feed(std::string_view data);
  /// The end of the input arrived (the peer closed its side).
  void feed_eof();
  /// A complete request is ready (take it with take()).
  bool done() const noexcept;
  /// The request; resets the parser for the next one.
  request take();
  /// The same, swapping `out` with the parser's request: the parser reuses `out`'s buffers.
  void take(request& out);
  /// status::ok while no error was seen.
  status error() const noexcept;
  /// Nothing of a request has been seen since the last take() (a clean place to close).
  bool idle() const noexcept;
  /// The head (request line and headers) is complete; the body may still be arriving.
  bool head_done() const noexcept;
  /// The head is complete, asks for `Expect: 100-continue` (HTTP/1.1) and announced a body.
  bool expects_continue() const noexcept;

 private:
  struct impl;
  impl* impl_;
};

/// Reads requests from `Stream` (anything with `co_await s.read(std::span<std::byte>)` returning
/// the byte count, 0 at EOF, and `co_await s.write_all(std::span<const std::byte>)`; a stream
/// with `read_some_pooled()` is read through that instead, unless limits::pooled_reads is off).
/// One reader per connection; not thread-safe. The stream must outlive the reader.
template <class Stream>
class request_reader {
  static constexpr bool can_pool = requires(Stream & s) { s.read_some_pooled(); };

 public:
  request_reader(Stream& s, const limits& l)
      : s_(s), limits_(l), parser_(l), pooled_(can_pool && l.pooled_reads) {
    if (!pooled_) buf_.resize(buffer_size);
  }

  /// Reads the next request into `out`. Timeouts, EOF and bad input come back as a status; a
  /// socket error (reset) or cancellation throws as the stream's read does.
  ///
  /// The head must arrive within limits::head_timeout of this call, the body within
  /// limits::body_timeout of the head's end. A request with `Expect: 100-continue` gets
  /// "HTTP/1.1 100 Continue" written to the stream before its body is read (so write any
  /// response still owed to earlier requests first: try_next says when that is needed).
  corio::task<status> next(request& out);

  /// next() without reading: the status if the bytes already buffered hold a complete request
  /// (or a bad one), std::nullopt if more must be read -- the moment to write the responses
  /// batched for the requests before it.
  std::optional<status> try_next(request& out);

  /// Bytes already read past the last request: the start of a pipelined request, or after an
  /// upgrade the first bytes of the new protocol.
  std::span<const std::byte> buffered() const noexcept {
    return bytes().subspan(begin_, end_ - begin_);
  }
  /// Nothing of a next request has arrived (no buffered byte, the parser idle).
  bool idle() const noexcept { return begin_ == end_ && parser_.idle(); }

 private:
  using clock = std::chrono::steady_clock;
  static constexpr std::size_t buffer_size = 16 * 1024;

  corio::task<> send_continue();
  std::span<const std::byte> bytes() const noexcept {
    return pooled_ ? std::span<const std::byte>(in_.bytes()) : std::span<const std::byte>(buf_);
  }

  Stream& s_;
  limits limits_;
  parser parser_;
  bool pooled_;
  // Invariant: [begin_, end_) are bytes not fed to the parser yet. Outside next() they are only
  // ever the bytes after a complete request; inside, reads go to an empty buffer: buf_, or a
  // pooled buffer in in_ (given back as soon as the parser took all of it).
  std::vector<std::byte> buf_;
  corio::pooled_buffer in_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

template <class Stream>
std::optional<status> request_reader<Stream>::try_next(request& out) {
  if (begin_ != end_) {
    auto chars = reinterpret_cast<const char*>(bytes().data()) + begin_;
    begin_ += parser_.feed(std::string_view(chars, end_ - begin_));
    if (begin_ == end_) {
      begin_ = end_ = 0;
      in_.reset();
    }
  }
  if (parser_.done()) {
    parser_.take(out);
    return status::ok;
  }
  if (parser_.error() != status::ok) return parser_.error();
  return std::nullopt;
}

template <class Stream>
corio::task<status> request_reader<Stream>::next(request& out) {
  if (auto st = try_next(out)) co_return *st;
  // Here the buffer is empty: the parser took every byte without finishing a request.
  std::optional<clock::time_point> deadline;
  bool in_body = false;
  for (;;) {
    clock::time_point now = clock::now();
    if (!deadline) deadline = now + limits_.head_timeout;
    if (!in_body && parser_.head_done()) {
      in_body = true;
      deadline = now + limits_.body_timeout;
      if (parser_.expects_continue()) co_await send_continue();
    }
    auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - now);
    if (left.count() <= 0) co_return status::request_timeout;
    std::size_t n = 0;
    bool timed_out = false;
    try {
      // Read here, not in a coroutine of its own: one frame and one resumption less per request.
      if constexpr (can_pool) {
        if (pooled_) {
          in_ = co_await corio::timeout(left, s_.read_some_pooled());
          n = in_.size();
        } else {
          n = co_await corio::timeout(left, s_.read(std::span(buf_)));
        }
      } else {
        n = co_await corio::timeout(left, s_.read(std::span(buf_)));
      }
    } catch (const corio::timed_out&) {
      timed_out = true;
    }
    if (timed_out) co_return status::request_timeout;
    if (n == 0) {
      parser_.feed_eof();
      if (parser_.idle()) co_return status::closed;
      // A request cut short (http-parser reports it as an error, or it ended mid-body).
      co_return parser_.error() != status::ok ? parser_.error() : status::bad_request;
    }
    begin_ = 0;
    end_ = n;
    if (auto st = try_next(out)) co_return *st;
  }
}

// Out of next(), whose frame every waiting connection holds.
template <class Stream>
corio::task<> request_reader<Stream>::send_continue() {
  static constexpr std::string_view go_on = "HTTP/1.1 100 Continue\r\n\r\n";
  co_await s_.write_all(std::as_bytes(std::span(go_on)));
}

}  // namespace http
