// The WebSocket sample's building blocks (samples/websocket/): frame headers in every length
// form, whole and byte by byte; unmasking at any offset; the strict incremental UTF-8 validator
// split at every position; the handshake's accept key (RFC 6455's own example).
#include <doctest/doctest.h>

#include "websocket/frame.hpp"
#include "websocket/handshake.hpp"
#include "websocket/utf8.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace {

std::vector<std::byte> bytes(std::initializer_list<int> v) {
  std::vector<std::byte> out;
  for (int b : v) out.push_back(static_cast<std::byte>(b));
  return out;
}

std::vector<std::byte> bytes(std::string_view s) {
  auto b = std::as_bytes(std::span(s.data(), s.size()));
  return {b.begin(), b.end()};
}

// Parses `h` as a whole; every proper prefix must ask for more.
ws::parse_status parse_all(const std::vector<std::byte>& h, ws::frame_header& out,
                           std::size_t& used) {
  for (std::size_t n = 0; n < h.size(); ++n) {
    ws::frame_header tmp;
    std::size_t u = 0;
    auto st = ws::parse_header(std::span(h).first(n), tmp, u);
    if (st != ws::parse_status::need_more) return st;  // decided early (a bad length)
  }
  return ws::parse_header(h, out, used);
}

bool valid_utf8_split(const std::vector<std::byte>& s) {
  ws::utf8_validator whole;
  bool ok = whole.feed(s) && whole.complete();
  for (std::size_t cut = 0; cut <= s.size(); ++cut) {
    ws::utf8_validator v;
    bool split = v.feed(std::span(s).first(cut));
    split = v.feed(std::span(s).subspan(cut)) && split;
    CHECK((split && v.complete()) == ok);
  }
  return ok;
}

}  // namespace

TEST_SUITE("websocket") {
  TEST_CASE("frame headers: 7-bit, 16-bit and 64-bit lengths, masked, whole and byte by byte") {
    ws::frame_header h;
    std::size_t used = 0;
    CHECK(parse_all(bytes({0x81, 0x85, 1, 2, 3, 4}), h, used) == ws::parse_status::ok);
    CHECK(used == 6);
    CHECK(h.fin);
    CHECK(h.opcode == ws::op_text);
    CHECK(h.masked);
    CHECK(h.length == 5);
    CHECK(h.mask[3] == std::byte{4});

    CHECK(parse_all(bytes({0x02, 0xFE, 0x01, 0x00, 9, 9, 9, 9}), h, used) == ws::parse_status::ok);
    CHECK(used == 8);
    CHECK_FALSE(h.fin);
    CHECK(h.opcode == ws::op_binary);
    CHECK(h.length == 256);

    CHECK(parse_all(bytes({0x82, 0xFF, 0, 0, 0, 0, 0x01, 0, 0, 0, 1, 2, 3, 4}), h, used) ==
          ws::parse_status::ok);
    CHECK(used == 14);
    CHECK(h.length == (std::uint64_t{1} << 24));

    CHECK(parse_all(bytes({0xF1, 0x00}), h, used) == ws::parse_status::ok);
    CHECK(h.rsv == 7);
    CHECK_FALSE(h.masked);
  }

  TEST_CASE("non-minimal lengths and the 64-bit top bit are refused") {
    ws::frame_header h;
    std::size_t used = 0;
    CHECK(parse_all(bytes({0x82, 0xFE, 0x00, 0x7D, 1, 2, 3, 4}), h, used) ==
          ws::parse_status::bad_length);
    CHECK(parse_all(bytes({0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 1, 2, 3, 4}), h, used) ==
          ws::parse_status::bad_length);
    CHECK(parse_all(bytes({0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}), h, used) ==
          ws::parse_status::bad_length);
  }

  TEST_CASE("the smallest length of each extended form is accepted") {
    ws::frame_header h;
    std::size_t used = 0;
    CHECK(parse_all(bytes({0x82, 0xFE, 0x00, 0x7E, 1, 2, 3, 4}), h, used) == ws::parse_status::ok);
    CHECK(h.length == 126);
    CHECK(parse_all(bytes({0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4}), h, used) ==
          ws::parse_status::ok);
    CHECK(h.length == 65536);
    CHECK(parse_all(bytes({0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4}),
                    h, used) == ws::parse_status::ok);
    CHECK(h.length == 0x7FFF'FFFF'FFFF'FFFFull);
  }

  TEST_CASE("server headers round-trip through the parser") {
    for (std::uint64_t len : {0ull, 125ull, 126ull, 65535ull, 65536ull, 1ull << 40}) {
      std::array<std::byte, 10> out;
      std::size_t n = ws::write_header(out, true, ws::op_binary, len);
      ws::frame_header h;
      std::size_t used = 0;
      REQUIRE(ws::parse_header(std::span(out).first(n), h, used) == ws::parse_status::ok);
      CHECK(used == n);
      CHECK(h.length == len);
      CHECK(h.fin);
      CHECK_FALSE(h.masked);
    }
  }

  TEST_CASE("unmasking at every offset and length matches the byte-wise definition") {
    std::array<std::byte, 4> mask{std::byte{0x12}, std::byte{0x34}, std::byte{0x56},
                                  std::byte{0x78}};
    for (std::size_t len = 0; len < 40; ++len) {
      for (std::uint64_t offset = 0; offset < 5; ++offset) {
        std::vector<std::byte> data(len), want(len);
        for (std::size_t i = 0; i < len; ++i) {
          data[i] = static_cast<std::byte>(i * 7 + 1);
          want[i] = data[i] ^ mask[(offset + i) % 4];
        }
        ws::unmask(data, mask, offset);
        CHECK(data == want);
      }
    }
  }

  TEST_CASE("UTF-8: valid text split anywhere; overlongs, surrogates, > U+10FFFF, truncation") {
    CHECK(valid_utf8_split(bytes("")));
    CHECK(valid_utf8_split(bytes("plain ascii")));
    CHECK(valid_utf8_split(bytes("κόσμε é € 𝄞 \xF4\x8F\xBF\xBF \xEF\xBF\xBF")));
    CHECK_FALSE(valid_utf8_split(bytes({0xC0, 0xAF})));              // overlong '/'
    CHECK_FALSE(valid_utf8_split(bytes({0xE0, 0x80, 0xAF})));        // overlong
    CHECK_FALSE(valid_utf8_split(bytes({0xF0, 0x80, 0x80, 0xAF})));  // overlong
    CHECK_FALSE(valid_utf8_split(bytes({0xED, 0xA0, 0x80})));        // U+D800
    CHECK_FALSE(valid_utf8_split(bytes({0xED, 0xBF, 0xBF})));        // U+DFFF
    CHECK_FALSE(valid_utf8_split(bytes({0xF4, 0x90, 0x80, 0x80})));  // U+110000
    CHECK_FALSE(valid_utf8_split(bytes({0xF5, 0x80, 0x80, 0x80})));
    CHECK_FALSE(valid_utf8_split(bytes({0x80})));        // stray continuation
    CHECK_FALSE(valid_utf8_split(bytes({0xE2, 0x82})));  // truncated at the end
    CHECK_FALSE(valid_utf8_split(bytes({0xCE, 0xBA, 0xFF})));
  }

  TEST_CASE("UTF-8: the edges of each range") {
    CHECK(valid_utf8_split(bytes({0x7F})));
    CHECK(valid_utf8_split(bytes({0xC2, 0x80})));                    // U+0080
    CHECK(valid_utf8_split(bytes({0xDF, 0xBF})));                    // U+07FF
    CHECK(valid_utf8_split(bytes({0xE0, 0xA0, 0x80})));              // U+0800
    CHECK(valid_utf8_split(bytes({0xED, 0x9F, 0xBF})));              // U+D7FF
    CHECK(valid_utf8_split(bytes({0xEE, 0x80, 0x80})));              // U+E000
    CHECK(valid_utf8_split(bytes({0xF0, 0x90, 0x80, 0x80})));        // U+10000
    CHECK(valid_utf8_split(bytes({0xF4, 0x8F, 0xBF, 0xBF})));        // U+10FFFF
    CHECK_FALSE(valid_utf8_split(bytes({0xC1, 0xBF})));              // overlong U+007F
    CHECK_FALSE(valid_utf8_split(bytes({0xE0, 0x9F, 0xBF})));        // overlong U+07FF
    CHECK_FALSE(valid_utf8_split(bytes({0xF0, 0x8F, 0xBF, 0xBF})));  // overlong U+FFFF
    CHECK_FALSE(valid_utf8_split(bytes({0xC2, 0x41})));              // ASCII as continuation
    CHECK_FALSE(valid_utf8_split(bytes({0xE2, 0x82, 0xAC, 0xAC})));  // one continuation too many
    // Once invalid, always invalid: valid bytes after the error do not repair it.
    ws::utf8_validator v;
    CHECK_FALSE(v.feed(bytes({0xFF})));
    CHECK_FALSE(v.feed(bytes("abc")));
    CHECK_FALSE(v.complete());
    v.reset();
    CHECK(v.feed(bytes("abc")));
    CHECK(v.complete());
  }

  TEST_CASE("the handshake: RFC 6455's example key, and malformed keys") {
    CHECK(ws::accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    CHECK(ws::valid_client_key("dGhlIHNhbXBsZSBub25jZQ=="));
    CHECK_FALSE(ws::valid_client_key(""));
    CHECK_FALSE(ws::valid_client_key("short"));
    CHECK_FALSE(ws::valid_client_key("dGhlIHNhbXBsZSBub25jZQ"));    // no padding
    CHECK_FALSE(ws::valid_client_key("dGhlIHNhbXBsZSBub25jZ*=="));  // not base64
    CHECK_FALSE(ws::valid_client_key("dGhlIHNhbXBsZSBub25jZSE="));  // 17 bytes
  }

  TEST_CASE("close codes") {
    for (unsigned c : {1000u, 1001u, 1002u, 1003u, 1007u, 1011u, 1014u, 3000u, 4999u}) {
      CHECK(ws::valid_close_code(c));
    }
    for (unsigned c : {0u, 999u, 1004u, 1005u, 1006u, 1015u, 1016u, 2999u, 5000u}) {
      CHECK_FALSE(ws::valid_close_code(c));
    }
  }
}
