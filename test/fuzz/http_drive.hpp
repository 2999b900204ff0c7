// Drives http::parser the way request_reader does (feed, take each complete request, feed the
// unused rest again) and checks what must hold for any input, whatever the split:
// - feed() uses at most the piece it got, and all of it unless a request completed or an
//   error was seen; an error is sticky and one of 400, 413, 431, 501;
// - a request has HTTP/1.x, a method, a target, header names, and a body within max_body_bytes
//   (exactly its Content-Length when it has one, unless it is an upgrade);
// - fed byte by byte, the head (from the first byte after the previous request) takes at most
//   max_head_bytes, and a 431 before the head's end comes exactly at that limit.
// outcome::operator== is the differential check: every split gives the same requests (each
// ending at the same byte), the same error (one exception: errors_agree), and the same status
// at EOF.
#pragma once

#include "check.hpp"
#include "http/request.hpp"
#include "http/text.hpp"
#include "split.hpp"

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <string_view>
#include <vector>

namespace fuzz {

struct parsed_request {
  http::request req;
  std::size_t end = 0;  // input offset right after its last byte
};

inline bool same(const http::request& a, const http::request& b) {
  if (a.headers.size() != b.headers.size()) return false;
  for (std::size_t i = 0; i < a.headers.size(); ++i)
    if (a.headers[i].name != b.headers[i].name || a.headers[i].value != b.headers[i].value)
      return false;
  return a.method == b.method && a.target == b.target && a.version_major == b.version_major &&
         a.version_minor == b.version_minor && a.body == b.body && a.keep_alive == b.keep_alive &&
         a.upgrade == b.upgrade;
}

struct outcome {
  std::vector<parsed_request> requests;
  http::status error = http::status::ok;   // the parse stopped on this error
  std::size_t used = 0;                    // bytes used before it stopped
  bool upgraded = false;                   // stopped after an upgrade request
  bool error_after_head = false;           // the error came after the head (in trailers)
  http::status at_eof = http::status::ok;  // what request_reader reports at EOF after `used`

  friend bool operator==(const outcome& a, const outcome& b) {
    if (a.requests.size() != b.requests.size()) return false;
    for (std::size_t i = 0; i < a.requests.size(); ++i)
      if (a.requests[i].end != b.requests[i].end || !same(a.requests[i].req, b.requests[i].req))
        return false;
    if (a.error == http::status::ok || b.error == http::status::ok)
      return a.error == b.error && a.used == b.used && a.upgraded == b.upgraded &&
             a.at_eof == b.at_eof;
    return errors_agree(a, b);  // at_eof is the error; `used`, where it came, may differ
  }

  // Where an error stops the parse depends on the split: http-parser hands a callback the bytes
  // it has at the end of each piece, so the trailer limit (counted in the callbacks) may be seen
  // before or after a malformed byte further on. Trailers both too long and malformed are then
  // 431 or 400; every other error is the same for every split.
  static bool errors_agree(const outcome& a, const outcome& b) {
    if (a.error == b.error) return true;
    auto either = [](http::status x, http::status y) {
      return (x == http::status::bad_request && y == http::status::header_fields_too_large) ||
             (y == http::status::bad_request && x == http::status::header_fields_too_large);
    };
    return a.error_after_head && b.error_after_head && either(a.error, b.error);
  }
};

inline bool is_error_status(http::status s) {
  int code = http::status_code(s);
  return code == 400 || code == 413 || code == 431 || code == 501;
}

inline void check_request(const http::request& r, const http::limits& lim) {
  FUZZ_CHECK(r.version_major == 1 && r.version_minor <= 9);
  FUZZ_CHECK(!r.method.empty());
  FUZZ_CHECK(!r.target.empty());
  FUZZ_CHECK(r.body.size() <= lim.max_body_bytes);
  for (const http::header& h : r.headers) FUZZ_CHECK(!h.name.empty());
  // http-parser accepts one Content-Length only, all digits; the body is then exactly that long
  // (but for an upgrade: CONNECT's bytes after the head are the tunnel's, whatever the header).
  std::string_view cl = r.get("Content-Length");
  if (!cl.empty() && r.get("Transfer-Encoding").empty() && !r.upgrade) {
    while (!cl.empty() && (cl.back() == ' ' || cl.back() == '\t')) cl.remove_suffix(1);
    std::size_t n = 0;
    auto [end, ec] = std::from_chars(cl.data(), cl.data() + cl.size(), n);
    if (ec == std::errc() && end == cl.data() + cl.size()) FUZZ_CHECK(r.body.size() == n);
  }
  // Without any Connection header, persistence is the version's default.
  bool connection_header = false;
  for (const http::header& h : r.headers)
    connection_header |=
        http::iequals(h.name, "Connection") || http::iequals(h.name, "Proxy-Connection");
  if (!connection_header && !r.upgrade) FUZZ_CHECK(r.keep_alive == (r.version_minor >= 1));
}

enum class split_mode { whole, pieces, bytes };

// `reuse`: take(request&) into one request object for every request (its old contents must not
// leak into the next), else take().
inline outcome drive(std::string_view in, const http::limits& lim, split_mode mode,
                     std::uint32_t seed, bool reuse) {
  http::parser p(lim);
  outcome out;
  splitter split(seed);
  http::request reused;
  std::size_t at = 0;     // input bytes used so far
  std::size_t start = 0;  // where the current request's bytes begin
  bool head_seen = false;
  while (at < in.size()) {
    std::size_t n = in.size() - at;
    if (mode == split_mode::bytes) n = 1;
    if (mode == split_mode::pieces) n = std::min(n, split.next());
    std::string_view piece = in.substr(at, n);
    while (!piece.empty()) {
      std::size_t used = p.feed(piece);
      FUZZ_CHECK(used <= piece.size());
      piece.remove_prefix(used);
      at += used;
      if (mode == split_mode::bytes && !head_seen && (p.head_done() || p.done())) {
        head_seen = true;
        FUZZ_CHECK(at - start <= lim.max_head_bytes);
      }
      if (p.done()) {
        FUZZ_CHECK(p.error() == http::status::ok);
        FUZZ_CHECK(!p.idle());
        if (reuse) {
          p.take(reused);
          out.requests.push_back({reused, at});
        } else {
          out.requests.push_back({p.take(), at});
        }
        check_request(out.requests.back().req, lim);
        FUZZ_CHECK(p.idle() && !p.done() && !p.head_done());
        start = at;
        head_seen = false;
        if (out.requests.back().req.upgrade) {
          // The rest belongs to the new protocol: the server feeds the parser no more.
          out.upgraded = true;
          out.used = at;
          return out;
        }
      } else if (p.error() != http::status::ok) {
        out.error = p.error();
        out.error_after_head = p.head_done();
        out.used = at;
        FUZZ_CHECK(is_error_status(out.error));
        if (mode == split_mode::bytes && out.error == http::status::header_fields_too_large &&
            !p.head_done())
          FUZZ_CHECK(at - start == lim.max_head_bytes);
        FUZZ_CHECK(p.feed(in.substr(at)) == 0 && p.error() == out.error);
        out.at_eof = out.error;
        return out;
      } else {
        FUZZ_CHECK(piece.empty());
      }
    }
  }
  out.used = at;
  p.feed_eof();
  if (p.idle()) {
    FUZZ_CHECK(p.error() == http::status::ok);
    out.at_eof = http::status::closed;
  } else {
    out.at_eof = p.error() != http::status::ok ? p.error() : http::status::bad_request;
    FUZZ_CHECK(is_error_status(out.at_eof));
  }
  return out;
}

/// Parses `in` whole, in the pieces `seed` picks, and byte by byte; all three must agree.
inline outcome drive_all(std::string_view in, const http::limits& lim, std::uint32_t seed) {
  outcome whole = drive(in, lim, split_mode::whole, seed, false);
  outcome pieces = drive(in, lim, split_mode::pieces, seed, true);
  FUZZ_CHECK(whole == pieces);
  outcome bytes = drive(in, lim, split_mode::bytes, seed, seed % 2 == 0);
  FUZZ_CHECK(whole == bytes);
  return whole;
}

}  // namespace fuzz
