// libFuzzer target: RFC 6455 frame headers and masking (samples/websocket/frame.hpp), over a
// stream of client frames as ws::session reads them.
//
// Input: one byte seeding the split, then the bytes from the client. For each frame:
// - parse_header() agrees with an independent decoding (RFC 6455 5.2) on every field and on the
//   header's size, says need_more for every shorter prefix, and bad_length exactly for a
//   non-minimal length or a 64-bit one with its top bit set (then the stream stops, as the
//   session fails the connection);
// - write_header() with the parsed fin, opcode and length gives the minimal header, which
//   parses back to the same (unmasked) frame;
// - unmask() equals XOR with mask[i % 4], whole or in the seeded pieces at their offsets, and
//   applying it twice restores the payload;
// - text messages (text frame, continuations until fin) are checked with utf8_validator fed
//   frame by frame, against utf8_reference.hpp on the whole message.
// Also: the first 8 bytes as a length round-trip through write_header() and parse_header()
// (bad_length for 2^63 and above, which no server sends).
#include "check.hpp"
#include "split.hpp"
#include "utf8_reference.hpp"
#include "websocket/frame.hpp"
#include "websocket/utf8.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <vector>

namespace {

using bytes = std::span<const std::byte>;

std::uint8_t at(bytes s, std::size_t i) {
  return static_cast<std::uint8_t>(s[i]);
}

// The reference decoding: `used` is the header size it needs; 0 with need_more when `s` is
// too short to tell.
ws::parse_status decode(bytes s, ws::frame_header& h, std::size_t& used) {
  used = 0;
  if (s.size() < 2) return ws::parse_status::need_more;
  h.fin = at(s, 0) >> 7;
  h.rsv = (at(s, 0) >> 4) & 7;
  h.opcode = at(s, 0) & 15;
  h.masked = at(s, 1) >> 7;
  std::size_t ext = (at(s, 1) & 127) == 126 ? 2 : (at(s, 1) & 127) == 127 ? 8 : 0;
  std::size_t need = 2 + ext + (h.masked ? 4 : 0);
  if (s.size() < 2 + ext) return ws::parse_status::need_more;
  std::uint64_t len = at(s, 1) & 127;
  if (ext != 0) {
    len = 0;
    for (std::size_t i = 0; i < ext; ++i) len = len * 256 + at(s, 2 + i);
    std::uint64_t min = ext == 2 ? 126 : 65536;
    if (len < min || len > INT64_MAX) return ws::parse_status::bad_length;
  }
  if (s.size() < need) return ws::parse_status::need_more;
  h.length = len;
  h.mask = {};
  if (h.masked)
    for (std::size_t i = 0; i < 4; ++i) h.mask[i] = s[2 + ext + i];
  used = need;
  return ws::parse_status::ok;
}

bool same(const ws::frame_header& a, const ws::frame_header& b) {
  return a.fin == b.fin && a.rsv == b.rsv && a.opcode == b.opcode && a.masked == b.masked &&
         a.length == b.length && (!a.masked || a.mask == b.mask);
}

void check_write(bool fin, std::uint8_t opcode, std::uint64_t length) {
  std::array<std::byte, 10> out{};
  std::size_t n = ws::write_header(out, fin, opcode, length);
  FUZZ_CHECK(n == (length < 126 ? 2u : length <= 0xFFFF ? 4u : 10u));
  ws::frame_header h;
  std::size_t used = 0;
  ws::parse_status ps = ws::parse_header(bytes(out).first(n), h, used);
  if (length > INT64_MAX) {
    FUZZ_CHECK(ps == ws::parse_status::bad_length);
    return;
  }
  FUZZ_CHECK(ps == ws::parse_status::ok && used == n);
  FUZZ_CHECK(h.fin == fin && h.rsv == 0 && h.opcode == (opcode & 15) && !h.masked);
  FUZZ_CHECK(h.length == length);
}

void check_unmask(bytes payload, const std::array<std::byte, 4>& mask, fuzz::splitter& split) {
  std::vector<std::byte> want(payload.begin(), payload.end());
  for (std::size_t i = 0; i < want.size(); ++i) want[i] ^= mask[i % 4];
  std::vector<std::byte> whole(payload.begin(), payload.end());
  ws::unmask(whole, mask, 0);
  FUZZ_CHECK(whole == want);
  std::vector<std::byte> pieces(payload.begin(), payload.end());
  for (std::size_t i = 0; i < pieces.size();) {
    std::size_t n = std::min(pieces.size() - i, split.next());
    ws::unmask(std::span(pieces).subspan(i, n), mask, i);
    i += n;
  }
  FUZZ_CHECK(pieces == want);
  ws::unmask(whole, mask, 0);
  FUZZ_CHECK(std::equal(whole.begin(), whole.end(), payload.begin(), payload.end()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  fuzz::splitter split(fuzz::take_u32(in, 1));
  bytes s = std::as_bytes(std::span(in.data(), in.size()));

  std::uint64_t first8 = 0;
  std::memcpy(&first8, s.data(), std::min<std::size_t>(8, s.size()));
  check_write(true, ws::op_binary, first8);
  check_write(false, ws::op_continuation, first8 >> 1);
  check_write(true, ws::op_text, first8 & 0xFFFF);
  check_write(true, ws::op_ping, first8 & 0x7F);

  std::vector<std::byte> message;  // the text message in progress, unmasked
  ws::utf8_validator v;
  bool in_text = false;
  std::size_t pos = 0;
  while (pos < s.size()) {
    bytes rest = s.subspan(pos);
    ws::frame_header want;
    std::size_t want_used = 0;
    ws::parse_status want_ps = decode(rest, want, want_used);
    // As the session's buffer fills: every prefix too short for the header is need_more.
    std::size_t enough = want_ps == ws::parse_status::ok ? want_used : rest.size();
    for (std::size_t k = 0; k < enough; ++k) {
      ws::frame_header h;
      std::size_t used = 0;
      ws::parse_status ps = ws::parse_header(rest.first(k), h, used);
      if (ps != ws::parse_status::need_more) {
        // A bad length is known as soon as the length bytes are in, before the mask.
        FUZZ_CHECK(ps == ws::parse_status::bad_length && want_ps == ws::parse_status::bad_length);
        ws::frame_header r;
        FUZZ_CHECK(decode(rest.first(k), r, used) == ws::parse_status::bad_length);
      }
    }
    ws::frame_header h;
    std::size_t used = 0;
    ws::parse_status ps = ws::parse_header(rest, h, used);
    FUZZ_CHECK(ps == want_ps);
    if (ps != ws::parse_status::ok) break;
    FUZZ_CHECK(used == want_used && same(h, want));
    FUZZ_CHECK(used == 2 + (h.length < 126 ? 0 : h.length <= 0xFFFF ? 2 : 8) + (h.masked ? 4 : 0));
    check_write(h.fin, h.opcode, h.length);

    bytes payload = rest.subspan(used);
    bool whole = h.length <= payload.size();
    if (whole) payload = payload.first(static_cast<std::size_t>(h.length));
    check_unmask(payload, h.mask, split);

    // Text messages as the session assembles them (control frames may come in between).
    if (whole && !ws::is_control(h.opcode)) {
      if (h.opcode == ws::op_text) {
        in_text = true;
        message.clear();
        v.reset();
      } else if (h.opcode != ws::op_continuation) {
        in_text = false;
      }
      if (in_text) {
        std::vector<std::byte> p(payload.begin(), payload.end());
        ws::unmask(p, h.mask, 0);
        message.insert(message.end(), p.begin(), p.end());
        fuzz::utf8_reference ref(message);
        FUZZ_CHECK(v.feed(p) == ref.viable[message.size()]);
        if (h.fin) {
          FUZZ_CHECK(v.complete() == ref.complete[message.size()]);
          in_text = false;
        }
      }
    }
    if (!whole) break;
    pos += used + payload.size();
  }
  return 0;
}
