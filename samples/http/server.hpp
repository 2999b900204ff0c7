// The HTTP/1.1 server of the samples, over any corio byte stream: http_server runs it on
// tcp_stream, https_server on a corio::tls stream.
//
// Routes: GET|HEAD / -> "Hello, World!" (TechEmpower plaintext); POST /echo -> the body back;
// GET|HEAD /static/<path> -> a file under server_options::files, read through io_uring. A known
// path with another method gets 405 (with Allow), any other path 404.
//
// One task per connection runs serve_connection:
//   1. try_next parses requests already buffered; for each, the response is appended to `out`
//      (one std::string per connection, reused) -- no write yet;
//   2. when the buffered bytes hold no complete request, `out` is written in one write_all:
//      the responses of requests pipelined in one read leave in one system call, in order;
//   3. next() reads; its deadlines (head, body) turn a slow or idle client into 408;
//   4. a bad request gets its status (400, 408, 413, 431, 501) and the connection closes, after
//      a lingering close where the stream has shutdown(): the write side is shut and the input
//      drained for a while, so that unread request bytes cannot make the kernel reset the
//      connection before the client has read the error.
// A write must finish within server_options::write_timeout (a client that stops reading).
//
// The template uses only `read` and `write_all` of the stream (see request_reader), plus
// `shutdown(corio::net::shutdown_how::write)` when the stream has it.
#pragma once

#include "request.hpp"
#include "response.hpp"
#include "static_files.hpp"

#include <corio/corio.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

namespace http {

struct server_options {
  limits request_limits;
  std::chrono::milliseconds write_timeout{30'000};  // one write_all of responses
  std::chrono::milliseconds linger_timeout{2'000};  // draining input before closing
  const static_files* files = nullptr;              // the /static/ route; 404 there when null
};

/// Writes `out` completely (within `limit`, else corio::timed_out) and empties it.
template <class Stream>
corio::task<> write_out(Stream& s, std::string& out, std::chrono::milliseconds limit) {
  co_await corio::timeout(limit, s.write_all(std::as_bytes(std::span(out))));
  out.clear();
}

/// Reads once within `left` and forgets the bytes; returns their count (0 at EOF). A stream the
/// request reader read with read_some_pooled goes on that way (its read() would throw), others
/// read into `sink`.
template <class Stream>
corio::task<std::size_t> read_discard(Stream& s, std::chrono::milliseconds left,
                                      std::span<std::byte> sink) {
  if constexpr (requires { s.reads_pooled(); }) {
    if (s.reads_pooled()) {
      corio::pooled_buffer b = co_await corio::timeout(left, s.read_some_pooled());
      co_return b.size();
    }
  }
  co_return co_await corio::timeout(left, s.read(sink));
}

/// Shuts the write side (when the stream can) and reads until EOF, for at most `limit`.
/// Swallows the stream's errors: the connection is ending anyway.
template <class Stream>
corio::task<> lingering_close(Stream& s, std::chrono::milliseconds limit) {
  if constexpr (requires { s.shutdown(corio::net::shutdown_how::write); }) {
    try {
      s.shutdown(corio::net::shutdown_how::write);
      std::array<std::byte, 4096> sink;
      auto deadline = std::chrono::steady_clock::now() + limit;
      for (;;) {
        auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline -
                                                                 std::chrono::steady_clock::now());
        if (left.count() <= 0) break;
        if (co_await read_discard(s, left, sink) == 0) break;
      }
    } catch (const corio::operation_cancelled&) {
      throw;
    } catch (const std::system_error&) {
      // A reset, a read timeout (corio::timed_out): the connection ends either way.
    }
  }
}

/// The request target's path: no query, no scheme and authority (absolute-form).
std::string_view path_of(std::string_view target) noexcept;

/// Whether `path` is the static file route's ("/static/...").
bool is_static_path(std::string_view path) noexcept;

/// Answers the routes served from memory (everything but /static/): appends the response to
/// `out`. Returns a body too large to copy into `out` (a view into req.body, to be written right
/// after `out`), or an empty view.
std::string_view respond(std::string& out, const request& req, std::string_view path);

/// GET|HEAD /static/<path>: appends the head to `out`, then the file in chunks read through
/// io_uring, writing `out` whenever it holds a chunk's worth. A file that shrinks while being
/// sent throws (the connection must end: its Content-Length was promised).
template <class Stream>
corio::task<> serve_static(Stream& s, const request& req, std::string_view path, std::string& out,
                           const server_options& o) {
  bool head = req.method == "HEAD";
  int refusal = 0;
  static_files::opened f;
  if (!head && req.method != "GET") {
    refusal = 405;
  } else if (o.files == nullptr) {
    refusal = 404;
  } else if (auto relative = percent_decode(path.substr(std::string_view("/static/").size()))) {
    f = o.files->open(*relative);
    if (f.code != 200) refusal = f.code;
  } else {
    refusal = 400;
  }
  if (refusal != 0) {
    append_response(out, req, refusal, "text/plain", reason_phrase(refusal), head,
                    refusal == 405 ? "Allow: GET, HEAD\r\n" : "");
    co_return;
  }
  corio::fd_stream file(f.fd);  // owns the fd from here
  append_head(out, head_for(req, 200, f.content_type, f.size));
  if (head) co_return;
  constexpr std::size_t chunk = 64 * 1024;
  for (std::uint64_t left = f.size; left > 0;) {
    std::size_t at = out.size();
    std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(left, chunk));
    out.resize(at + want);
    std::size_t n = co_await file.read(std::as_writable_bytes(std::span(out)).subspan(at, want));
    if (n == 0) throw std::system_error(EIO, std::generic_category(), "static file shrank");
    out.resize(at + n);
    left -= n;
    if (out.size() >= chunk) co_await write_out(s, out, o.write_timeout);
  }
}

/// Serves HTTP/1.1 requests on `s` until the client closes, a request asks to close, or a bad
/// request was answered. Returns normally then; a stream error (reset, write timeout) or
/// cancellation throws. The stream is left open (its owner closes it).
template <class Stream>
corio::task<> serve_connection(Stream& s, const server_options& o) {
  // `out` beyond this is written before more responses are added (a pipelined burst of large
  // echoes would otherwise buffer without bound).
  constexpr std::size_t flush_bytes = 64 * 1024;
  request_reader<Stream> reader(s, o.request_limits);
  request req;
  std::string out;
  out.reserve(4096);
  bool answered_one = false;
  bool linger = true;
  for (;;) {
    std::optional<status> st = reader.try_next(req);
    if (!st) {
      if (!out.empty()) co_await write_out(s, out, o.write_timeout);
      st = co_await reader.next(req);
    }
    if (*st == status::closed) {
      linger = false;
      break;
    }
    if (*st != status::ok) {
      // An idle keep-alive connection closes without a word: a 408 written there could pass for
      // the answer to a request the client is sending at that moment.
      if (*st == status::request_timeout && answered_one && reader.idle()) {
        linger = false;
      } else {
        append_error(out, status_code(*st));
      }
      break;
    }
    answered_one = true;
    // After CONNECT the bytes are a tunnel's, which this server does not open.
    if (req.method == "CONNECT") req.keep_alive = false;
    std::string_view path = path_of(req.target);
    if (is_static_path(path)) {
      co_await serve_static(s, req, path, out, o);
    } else if (std::string_view tail = respond(out, req, path); !tail.empty()) {
      co_await write_out(s, out, o.write_timeout);
      co_await corio::timeout(o.write_timeout, s.write_all(std::as_bytes(std::span(tail))));
    }
    if (!req.keep_alive) break;
    if (out.size() >= flush_bytes) co_await write_out(s, out, o.write_timeout);
  }
  if (!out.empty()) co_await write_out(s, out, o.write_timeout);
  if (linger) co_await lingering_close(s, o.linger_timeout);
}

}  // namespace http
