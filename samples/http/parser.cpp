// http::parser: requests from http-parser's callbacks.
//
// How one request goes through http_parser_execute:
//   1. on_message_begin marks the parser busy (idle() turns false);
//   2. on_url / on_header_field / on_header_value append to the request as the bytes go by
//      (a callback may get a piece of a field: a new header starts when a field follows a value);
//   3. on_headers_complete checks what http-parser leaves to us (version, Transfer-Encoding,
//      Content-Length against the body limit) and fills method, version, keep-alive, upgrade;
//   4. on_chunk_header and on_body check the body limit before appending;
//   5. on_message_complete pauses the parser, so http_parser_execute returns right after the
//      request's last byte: what follows is the next request's, or an upgraded protocol's.
// A callback that fails records our status and returns nonzero, which stops http-parser with an
// HPE_CB_* error; error() prefers the recorded status over the generic 400. A callback that
// throws (an allocation) is stopped the same way, and feed() rethrows its exception.
//
// The head limit is enforced here, not with http_parser_set_max_header_size (a global): while
// the head is incomplete, feed() gives http-parser no more than the head bytes still allowed.
// So is the rejection of a bare CR in the head (scan_head), which the library tolerates.
#include "request.hpp"
#include "text.hpp"

#include <http_parser.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <exception>
#include <utility>

namespace http {

struct parser::impl {
  http_parser hp;
  limits lim;
  request req;
  std::size_t head_bytes = 0;     // fed while the head was incomplete
  std::size_t trailer_bytes = 0;  // trailer fields and values (dropped, but limited)
  status failure = status::ok;    // recorded by a callback that stopped the parser
  bool begun = false;
  bool head_complete = false;
  bool complete = false;
  bool in_value = false;  // the last header callback was a value: a field starts a new header
  bool continue_expected = false;
  // The request line as received (without leading empty lines), up to its LF: libhttp-parser is
  // built non-strict in Debian and lets "HTTX/1.1" or two spaces pass, so we check it again.
  std::string line;
  bool line_complete = false;
  // The bare-CR scan of the head (scan_head): Debian's non-strict http-parser takes a CR that no
  // LF follows as a line end, so "X: \rTransfer-Encoding: chunked" would frame the body as chunked
  // for us and not for a proxy in front (CVE-2023-30589). RFC 9112 2.2 allows rejecting it.
  bool cr_pending = false;    // the last head byte scanned was a CR
  bool head_text = false;     // a byte other than CR or LF was scanned (leading empty lines skip)
  int line_ends = 0;          // consecutive line ends since the last other byte
  bool head_scanned = false;  // the blank line that ends the head was scanned
  std::exception_ptr thrown;  // by a callback; rethrown by feed() once http-parser returned

  explicit impl(const limits& l) : lim(l) { reset(); }

  void reset() noexcept {
    http_parser_init(&hp, HTTP_REQUEST);
    hp.data = this;
    req.clear();
    head_bytes = trailer_bytes = 0;
    failure = status::ok;
    begun = head_complete = complete = in_value = continue_expected = line_complete = false;
    line.clear();
    cr_pending = head_text = head_scanned = false;
    line_ends = 0;
  }

  // Runs before http-parser sees `data`, until the line is complete: copies it up to its LF.
  void capture_line(std::string_view data) {
    if (line.empty()) {
      std::size_t start = data.find_first_not_of("\r\n");
      if (start == std::string_view::npos) return;
      data.remove_prefix(start);
    }
    std::size_t lf = data.find('\n');
    if (lf == std::string_view::npos) {
      line.append(data);
      return;
    }
    line.append(data.substr(0, lf + 1));
    line_complete = true;
  }

  // Runs before http-parser sees `data`, up to the blank line that ends the head: false if a CR
  // is followed by anything but LF. The state carries over between pieces, so the verdict does
  // not depend on how the bytes were split.
  bool scan_head(std::string_view data) noexcept {
    const char* p = data.data();
    const char* const end = p + data.size();
    while (p != end && !head_scanned) {
      if (cr_pending) {
        if (*p != '\n') return false;
        cr_pending = false;
      }
      // The bytes of a line up to its end (the first CR or LF), found with two memchr calls
      // instead of a test per byte.
      const char* text = p;
      const auto left = static_cast<std::size_t>(end - p);
      const void* cr = std::memchr(p, '\r', left);
      const std::size_t to_cr =
          cr ? static_cast<std::size_t>(static_cast<const char*>(cr) - p) : left;
      const void* lf = std::memchr(p, '\n', to_cr);
      p = lf ? static_cast<const char*>(lf) : p + to_cr;
      if (p != text) {
        head_text = true;
        line_ends = 0;
        if (p == end) break;
      }
      if (*p == '\r') {
        cr_pending = true;
      } else if (head_text && ++line_ends == 2) {
        head_scanned = true;
      }
      ++p;
    }
    return true;
  }

  // METHOD SP target SP HTTP/d.d, with exactly one space between them.
  bool line_is_strict() const {
    std::string_view l = line;
    if (!l.ends_with('\n') || req.version_major > 9 || req.version_minor > 9) return false;
    l.remove_suffix(l.ends_with("\r\n") ? 2 : 1);
    auto take = [&l](std::string_view part) {
      if (!l.starts_with(part)) return false;
      l.remove_prefix(part.size());
      return true;
    };
    return take(req.method) && take(" ") && take(req.target) && take(" HTTP/") && l.size() == 3 &&
           l[0] == static_cast<char>('0' + req.version_major) && l[1] == '.' &&
           l[2] == static_cast<char>('0' + req.version_minor);
  }

  // RFC 9110 tchar; Debian's non-strict http-parser also lets spaces into header names.
  static constexpr std::array<bool, 256> tchar = [] {
    std::array<bool, 256> t{};
    for (int c = '0'; c <= '9'; ++c) t[c] = true;
    for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
    for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
    for (char c : std::string_view("!#$%&'*+-.^_`|~")) t[static_cast<unsigned char>(c)] = true;
    return t;
  }();
  static bool is_token(std::string_view name) noexcept {
    if (name.empty()) return false;
    for (char c : name)
      if (!tchar[static_cast<unsigned char>(c)]) return false;
    return true;
  }

  int fail(status s) noexcept {
    failure = s;
    return -1;
  }

  // The callbacks, as members. They may throw (std::bad_alloc), but not through http-parser's C
  // frames: the adapters below keep the exception for feed() to rethrow.
  int message_begin() {
    begun = true;
    return 0;
  }
  int url(const char* at, std::size_t n) {
    req.target.append(at, n);
    return 0;
  }
  int header_field(const char* at, std::size_t n) {
    if (head_complete) return count_trailer(n);
    if (in_value || req.headers.empty()) req.headers.emplace_back();
    in_value = false;
    req.headers.back().name.append(at, n);
    return 0;
  }
  int header_value(const char* at, std::size_t n) {
    if (head_complete) return count_trailer(n);
    in_value = true;
    req.headers.back().value.append(at, n);
    return 0;
  }
  int count_trailer(std::size_t n) noexcept {
    trailer_bytes += n;
    return trailer_bytes > lim.max_head_bytes ? fail(status::header_fields_too_large) : 0;
  }

  int headers_complete() {
    req.method = http_method_str(static_cast<http_method>(hp.method));
    req.version_major = hp.http_major;
    req.version_minor = hp.http_minor;
    req.keep_alive = http_should_keep_alive(&hp) != 0;
    req.upgrade = hp.upgrade != 0;
    if (req.version_major != 1 || !line_is_strict()) return fail(status::bad_request);
    for (const header& h : req.headers)
      if (!is_token(h.name)) return fail(status::bad_request);
    bool has_length = (hp.flags & F_CONTENTLENGTH) != 0;
    if (int rc = check_transfer_encoding(has_length); rc != 0) return rc;
    if (has_length) {
      if (hp.content_length > lim.max_body_bytes) return fail(status::payload_too_large);
      // Bounded: a generous --max-body must not let one header reserve gigabytes up front.
      constexpr std::uint64_t max_reserve = 1 << 20;
      req.body.reserve(static_cast<std::size_t>(std::min(hp.content_length, max_reserve)));
    }
    bool has_body = (hp.flags & F_CHUNKED) != 0 || (has_length && hp.content_length > 0);
    continue_expected =
        has_body && req.version_minor >= 1 && req.has_token("Expect", "100-continue");
    head_complete = true;
    return 0;
  }
  // http-parser 2.9.4 already refuses Content-Length with a chunked Transfer-Encoding, and a
  // request whose last coding is not chunked; what it accepts ("gzip, chunked") we cannot decode.
  int check_transfer_encoding(bool has_length) noexcept {
    bool seen = false;
    for (const header& h : req.headers) {
      if (!iequals(h.name, "Transfer-Encoding")) continue;
      if (seen || has_length) return fail(status::bad_request);
      seen = true;
      std::string_view coding = trim(h.value);
      if (coding.empty()) return fail(status::bad_request);
      if (!iequals(coding, "chunked")) return fail(status::not_implemented);
    }
    return 0;
  }

  int chunk_header() noexcept {
    // http-parser holds the announced chunk size in content_length here.
    if (hp.content_length > lim.max_body_bytes - req.body.size())
      return fail(status::payload_too_large);
    return 0;
  }
  int body(const char* at, std::size_t n) {
    if (n > lim.max_body_bytes - req.body.size()) return fail(status::payload_too_large);
    req.body.append(at, n);
    return 0;
  }
  int message_complete() noexcept {
    complete = true;
    http_parser_pause(&hp, 1);
    return 0;
  }

  static impl& of(http_parser* p) noexcept { return *static_cast<impl*>(p->data); }
  template <int (impl::*Member)()>
  static int notify(http_parser* p) noexcept {
    try {
      return (of(p).*Member)();
    } catch (...) {
      of(p).thrown = std::current_exception();
      return -1;
    }
  }
  template <int (impl::*Member)(const char*, std::size_t)>
  static int data(http_parser* p, const char* at, std::size_t n) noexcept {
    try {
      return (of(p).*Member)(at, n);
    } catch (...) {
      of(p).thrown = std::current_exception();
      return -1;
    }
  }

  static const http_parser_settings settings;
};

const http_parser_settings parser::impl::settings = [] {
  http_parser_settings s;
  http_parser_settings_init(&s);
  s.on_message_begin = &notify<&impl::message_begin>;
  s.on_url = &data<&impl::url>;
  s.on_header_field = &data<&impl::header_field>;
  s.on_header_value = &data<&impl::header_value>;
  s.on_headers_complete = &notify<&impl::headers_complete>;
  s.on_chunk_header = &notify<&impl::chunk_header>;
  s.on_body = &data<&impl::body>;
  s.on_message_complete = &notify<&impl::message_complete>;
  return s;
}();

parser::parser(const limits& l) : impl_(new impl(l)) {}
parser::~parser() {
  delete impl_;
}

std::size_t parser::feed(std::string_view data) {
  impl& m = *impl_;
  std::size_t used = 0;
  while (used < data.size() && !m.complete && error() == status::ok) {
    std::size_t chunk = data.size() - used;
    bool in_head = !m.head_complete;
    if (in_head) {
      if (m.head_bytes >= m.lim.max_head_bytes) {
        m.failure = status::header_fields_too_large;
        break;
      }
      chunk = std::min(chunk, m.lim.max_head_bytes - m.head_bytes);
      if (!m.scan_head(data.substr(used, chunk))) {
        m.failure = status::bad_request;
        break;
      }
      if (!m.line_complete) m.capture_line(data.substr(used, chunk));
    }
    std::size_t n = http_parser_execute(&m.hp, &impl::settings, data.data() + used, chunk);
    if (m.thrown) std::rethrow_exception(std::exchange(m.thrown, nullptr));
    // Once the head is complete, head_bytes no longer matters: overcounting body bytes is fine.
    if (in_head) m.head_bytes += n;
    used += n;
  }
  return used;
}

void parser::feed_eof() {
  if (impl_->complete || error() != status::ok) return;
  http_parser_execute(&impl_->hp, &impl::settings, nullptr, 0);
}

bool parser::done() const noexcept {
  return impl_->complete;
}

request parser::take() {
  request r;
  take(r);
  return r;
}

void parser::take(request& out) {
  using std::swap;
  swap(out, impl_->req);
  impl_->reset();
}

status parser::error() const noexcept {
  const impl& m = *impl_;
  if (m.failure != status::ok) return m.failure;
  switch (HTTP_PARSER_ERRNO(&m.hp)) {
    case HPE_OK:
    case HPE_PAUSED:
      return status::ok;
    case HPE_HEADER_OVERFLOW:
      return status::header_fields_too_large;
    default:
      return status::bad_request;
  }
}

bool parser::idle() const noexcept {
  return !impl_->begun;
}
bool parser::head_done() const noexcept {
  return impl_->head_complete;
}
bool parser::expects_continue() const noexcept {
  return impl_->continue_expected;
}

}  // namespace http
