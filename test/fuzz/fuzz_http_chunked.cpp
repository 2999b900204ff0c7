// libFuzzer target: chunked bodies through http::parser (samples/http/).
//
// Input: one byte choosing the limits, two bytes seeding the split, then the bytes after the
// head of a chunked POST: chunk framing, extensions, trailers, and maybe what follows. Besides
// the checks of http_drive.hpp (every split agrees), the first request is compared with an
// independent decoder of the strict RFC 9112 7.1 grammar (chunk extensions without BWS; trailer
// fields that are tokens, none of the framing or connection ones http-parser interprets):
// - strictly valid and within the limits: the parser must give that body and stop right after
//   the final CRLF;
// - a strictly valid prefix cut short: no request, no error, every byte used, 400 at EOF;
// - strictly valid up to a chunk whose announced size exceeds the body limit: 413.
// What the strict grammar refuses, http-parser (built non-strict by Debian) may still accept:
// no expectation then, beyond the common checks.
#include "http/text.hpp"
#include "http_drive.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

constexpr std::string_view head =
    "POST /chunked HTTP/1.1\r\nHost: fuzz\r\nTransfer-Encoding: chunked\r\n\r\n";

struct reference {
  enum kind { valid, incomplete, too_large, unknown } k = unknown;
  std::string body;
  std::size_t consumed = 0;  // on valid: the chunked body's length, final CRLF included
};

bool is_tchar(char c) {
  bool alnum = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  return alnum || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
bool is_field_vchar(char c) {
  auto u = static_cast<unsigned char>(c);
  return (u >= 0x21 && u <= 0x7E) || u >= 0x80;
}

// A cursor over the chunked body. Each step returns false when the input is not strictly valid
// there, and sets `short_` when it ended first (a valid prefix).
class decoder {
 public:
  decoder(std::string_view s, std::size_t max_body, std::size_t max_trailer)
      : s_(s), max_body_(max_body), max_trailer_(max_trailer) {}

  reference run() {
    reference r;
    r.k = decode(r.body) ? reference::valid
          : short_       ? reference::incomplete
          : big_         ? reference::too_large
                         : reference::unknown;
    r.consumed = at_;
    return r;
  }

 private:
  bool more() {
    if (at_ < s_.size()) return true;
    short_ = true;
    return false;
  }
  bool literal(char c) {
    if (!more() || s_[at_] != c) return false;
    ++at_;
    return true;
  }
  bool crlf() { return literal('\r') && literal('\n'); }
  bool token() {
    std::size_t from = at_;
    while (more() && is_tchar(s_[at_])) ++at_;
    return at_ > from && !short_;
  }
  bool quoted_string() {
    if (!literal('"')) return false;
    for (;;) {
      if (!more()) return false;
      auto c = static_cast<unsigned char>(s_[at_++]);
      if (c == '"') return true;
      if (c == '\\') {
        if (!more()) return false;
        c = static_cast<unsigned char>(s_[at_++]);
        if (c != '\t' && c != ' ' && !is_field_vchar(static_cast<char>(c))) return false;
      } else if (c != '\t' && c != ' ' && !is_field_vchar(static_cast<char>(c))) {
        return false;
      }
    }
  }
  // *( ";" name [ "=" ( token / quoted-string ) ] ) CRLF
  bool extensions() {
    while (more() && s_[at_] == ';') {
      ++at_;
      if (!token()) return false;
      if (more() && s_[at_] == '=') {
        ++at_;
        if (!more()) return false;
        if (s_[at_] == '"' ? !quoted_string() : !token()) return false;
      }
    }
    return crlf();
  }
  // http-parser counts fewer bytes against the trailer limit than the lines have: up to the
  // limit in whole lines, a 431 cannot come.
  bool trailers() {
    std::size_t raw = 0;
    for (;;) {
      if (!more()) return false;
      if (s_[at_] == '\r') return crlf();
      std::size_t line = at_;
      if (!trailer_line()) {
        if (short_ && raw + (at_ - line) > max_trailer_) short_ = false;
        return false;
      }
      raw += at_ - line;
      if (raw > max_trailer_) return false;
    }
  }
  bool trailer_line() {
    std::size_t name = at_;
    if (!token()) return false;
    std::string_view n = s_.substr(name, at_ - name);
    for (std::string_view framing :
         {"Content-Length", "Transfer-Encoding", "Connection", "Proxy-Connection", "Upgrade"})
      if (http::iequals(n, framing)) return false;
    if (!literal(':')) return false;
    // OWS field-value OWS: spaces, tabs and visible bytes, in any order, up to CRLF.
    while (more() && (s_[at_] == ' ' || s_[at_] == '\t' || is_field_vchar(s_[at_]))) ++at_;
    return crlf();
  }
  bool decode(std::string& body) {
    for (;;) {
      std::size_t from = at_, digits = 0;
      std::uint64_t size = 0;
      while (more() && hex_value(s_[at_]) >= 0) {
        size = size * 16 + static_cast<std::uint64_t>(hex_value(s_[at_]));
        if (size != 0) ++digits;
        ++at_;
        // Beyond 15 significant digits http-parser reports an overflow (400), not 413.
        if (digits > 15) return false;
      }
      if (short_) return false;
      if (at_ == from) return false;
      if (!extensions()) return false;
      if (size > max_body_ - body.size()) {
        big_ = true;
        return false;
      }
      if (size == 0) return trailers();
      if (s_.size() - at_ < size) {
        short_ = true;
        return false;
      }
      body.append(s_.substr(at_, size));
      at_ += size;
      if (!crlf()) return false;
    }
  }

  std::string_view s_;
  std::size_t max_body_, max_trailer_;
  std::size_t at_ = 0;
  bool short_ = false;  // the input ended where the strict grammar wanted more
  bool big_ = false;    // a strictly valid chunk header announced too many bytes
};

http::limits limits_for(std::uint32_t choice) {
  http::limits l;
  constexpr std::size_t bodies[] = {1u << 20, 0, 16, 255};
  l.max_body_bytes = bodies[choice % 4];
  if ((choice >> 2) % 2 != 0) l.max_head_bytes = 80;  // the head fits; trailers barely do
  return l;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  http::limits lim = limits_for(fuzz::take_u32(in, 1));
  std::uint32_t seed = fuzz::take_u32(in, 2);
  std::string message(head);
  message.append(in);
  fuzz::outcome got = fuzz::drive_all(message, lim, seed);

  reference want = decoder(in, lim.max_body_bytes, lim.max_head_bytes).run();
  switch (want.k) {
    case reference::valid:
      FUZZ_CHECK(!got.requests.empty());
      FUZZ_CHECK(got.requests[0].req.body == want.body);
      FUZZ_CHECK(got.requests[0].end == head.size() + want.consumed);
      break;
    case reference::incomplete:
      FUZZ_CHECK(got.requests.empty() && got.error == http::status::ok);
      FUZZ_CHECK(got.used == message.size() && got.at_eof == http::status::bad_request);
      break;
    case reference::too_large:
      FUZZ_CHECK(got.requests.empty() && got.error == http::status::payload_too_large);
      break;
    case reference::unknown:
      break;
  }
  return 0;
}
