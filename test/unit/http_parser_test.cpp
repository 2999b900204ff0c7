// samples/http/request.hpp: http::parser over http-parser, and http::request_reader over a real
// tcp_stream pair.
// Invariants: a request comes out exactly when its last byte is fed, whatever the split of the
// input, and no byte after it is used (pipelining, upgrades); every malformed or oversized input
// ends in the documented status, never in a request; the reader turns idle and slow clients into
// request_timeout, and EOF between requests into closed.
#include <doctest/doctest.h>

#include "http/request.hpp"
#include "http/server.hpp"

#include <corio/corio.hpp>

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using namespace std::string_view_literals;
using corio::task;
using corio::net::tcp_listener;
using corio::net::tcp_stream;
using http::status;

namespace {

struct parsed {
  std::vector<http::request> requests;
  status error = status::ok;
  std::size_t used = 0;  // bytes used before the parse stopped (all, unless an error)
};

// Feeds `input` in pieces of `step` bytes (0: all at once), taking every request as it completes
// and feeding the unused rest again, as request_reader does.
parsed parse(std::string_view input, std::size_t step = 0, http::limits l = {}) {
  http::parser p(l);
  parsed out;
  std::size_t at = 0;
  while (at < input.size()) {
    std::size_t n = step == 0 ? input.size() - at : std::min(step, input.size() - at);
    std::string_view piece = input.substr(at, n);
    while (!piece.empty()) {
      std::size_t used = p.feed(piece);
      piece.remove_prefix(used);
      at += used;
      if (p.done()) {
        out.requests.push_back(p.take());
      } else if (p.error() != status::ok) {
        out.error = p.error();
        out.used = at;
        return out;
      } else {
        REQUIRE(piece.empty());  // no request, no error: every byte must have been used
      }
    }
  }
  out.used = at;
  return out;
}

status error_of(std::string_view input, http::limits l = {}) {
  parsed r = parse(input, 0, l);
  CHECK(r.requests.empty());
  return r.error;
}

constexpr std::string_view three_pipelined =
    "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
    "POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
    "GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

void check_three_pipelined(const parsed& r) {
  REQUIRE(r.error == status::ok);
  REQUIRE(r.requests.size() == 3);
  CHECK(r.requests[0].target == "/a");
  CHECK(r.requests[0].body.empty());
  CHECK(r.requests[1].method == "POST");
  CHECK(r.requests[1].target == "/b");
  CHECK(r.requests[1].body == "hello");
  CHECK(r.requests[1].keep_alive);
  CHECK(r.requests[2].target == "/c");
  CHECK_FALSE(r.requests[2].keep_alive);
}

}  // namespace

TEST_SUITE("http_parser") {
  TEST_CASE("a simple GET gives method, target, version and headers in arrival order") {
    parsed r = parse("GET /echo?x=1 HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n");
    REQUIRE(r.requests.size() == 1);
    const http::request& q = r.requests[0];
    CHECK(q.method == "GET");
    CHECK(q.target == "/echo?x=1");
    CHECK(q.version_major == 1);
    CHECK(q.version_minor == 1);
    REQUIRE(q.headers.size() == 2);
    CHECK(q.headers[0].name == "Host");
    CHECK(q.headers[0].value == "localhost");
    CHECK(q.headers[1].name == "Accept");
    CHECK(q.headers[1].value == "*/*");
    CHECK(q.body.empty());
    CHECK(q.keep_alive);
    CHECK_FALSE(q.upgrade);
  }

  TEST_CASE("header names match case-insensitively; has_token reads every comma list") {
    parsed r = parse(
        "GET / HTTP/1.1\r\ncOnTeNt-TyPe: text/plain\r\nConnection: keep-alive , Upgrade\r\n"
        "X-List: a\r\nx-list: B, c\r\n\r\n");
    REQUIRE(r.requests.size() == 1);
    const http::request& q = r.requests[0];
    CHECK(q.get("content-type") == "text/plain");
    CHECK(q.get("CONTENT-TYPE") == "text/plain");
    CHECK(q.get("missing").empty());
    CHECK(q.get("x-list") == "a");  // the first one
    CHECK(q.has_token("connection", "upgrade"));
    CHECK(q.has_token("Connection", "KEEP-ALIVE"));
    CHECK(q.has_token("X-List", "b"));
    CHECK(q.has_token("X-List", "c"));
    CHECK_FALSE(q.has_token("X-List", "d"));
    CHECK_FALSE(q.has_token("Connection", "keep"));
  }

  TEST_CASE("keep-alive: HTTP/1.1 unless Connection: close; HTTP/1.0 only with keep-alive") {
    auto keep = [](std::string_view head) {
      parsed r = parse(head);
      REQUIRE(r.requests.size() == 1);
      return r.requests[0].keep_alive;
    };
    CHECK(keep("GET / HTTP/1.1\r\n\r\n"));
    CHECK_FALSE(keep("GET / HTTP/1.1\r\nConnection: close\r\n\r\n"));
    CHECK_FALSE(keep("GET / HTTP/1.1\r\nconnection: CLOSE\r\n\r\n"));
    CHECK_FALSE(keep("GET / HTTP/1.0\r\n\r\n"));
    CHECK(keep("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    parsed r = parse("GET / HTTP/1.0\r\n\r\n");
    CHECK(r.requests[0].version_minor == 0);
  }

  TEST_CASE("pipelined requests in one buffer come out one at a time, in order") {
    http::parser p({});
    std::string_view in = three_pipelined;
    std::size_t used = p.feed(in);
    REQUIRE(p.done());
    CHECK(used == in.find("POST"));  // stopped right after the first request
    CHECK(p.take().target == "/a");
    in.remove_prefix(used);
    used = p.feed(in);
    REQUIRE(p.done());
    CHECK(used == in.find("GET"));
    CHECK(p.take().body == "hello");
    in.remove_prefix(used);
    CHECK(p.feed(in) == in.size());
    REQUIRE(p.done());
    check_three_pipelined(parse(three_pipelined));
  }

  TEST_CASE("pipelined requests fed byte by byte, and in every piece size up to 40") {
    check_three_pipelined(parse(three_pipelined, 1));
    for (std::size_t step = 2; step <= 40; ++step)
      check_three_pipelined(parse(three_pipelined, step));
  }

  TEST_CASE("a Content-Length body split at every byte boundary is the same body") {
    std::string body;
    for (int i = 0; i < 300; ++i) body += static_cast<char>('a' + i % 26);
    std::string in =
        "POST /echo HTTP/1.1\r\nContent-Length: 300\r\n\r\n" + body + "GET / HTTP/1.1\r\n\r\n";
    for (std::size_t cut = 1; cut < in.size(); ++cut) {
      http::parser p({});
      std::string_view rest = in;
      std::vector<http::request> got;
      for (std::string_view piece : {rest.substr(0, cut), rest.substr(cut)}) {
        while (!piece.empty()) {
          piece.remove_prefix(p.feed(piece));
          REQUIRE(p.error() == status::ok);
          if (p.done()) got.push_back(p.take());
        }
      }
      REQUIRE(got.size() == 2);
      CHECK(got[0].body == body);
      CHECK(got[1].target == "/");
    }
  }

  TEST_CASE("a chunked body is decoded, skipping chunk extensions and dropping trailers") {
    constexpr std::string_view in =
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5;name=value\r\nhello\r\n"
        "1\r\n \r\n"
        "A;x;y=\"q\"\r\n0123456789\r\n"
        "0\r\nX-Trailer: 1\r\nOther: 2\r\n\r\n"
        "GET /next HTTP/1.1\r\n\r\n";
    for (std::size_t step : {0, 1, 3, 7}) {
      CAPTURE(step);
      parsed r = parse(in, step);
      REQUIRE(r.error == status::ok);
      REQUIRE(r.requests.size() == 2);
      CHECK(r.requests[0].body == "hello 0123456789");
      CHECK(r.requests[0].headers.size() == 2);  // Host and Transfer-Encoding; no trailers
      CHECK(r.requests[1].target == "/next");
    }
  }

  TEST_CASE("the head limit: exactly max_head_bytes passes, one byte more is 431") {
    http::limits l;
    l.max_head_bytes = 100;
    std::string head = "GET / HTTP/1.1\r\nX-Pad: ";
    head += std::string(100 - head.size() - 4, 'p');
    head += "\r\n\r\n";
    REQUIRE(head.size() == 100);
    for (std::size_t step : {0, 1, 9}) {
      parsed ok = parse(head + "GET / HTTP/1.1\r\n\r\n", step, l);
      CHECK(ok.error == status::ok);
      CHECK(ok.requests.size() == 2);
    }
    std::string longer = head.substr(0, 20) + "q" + head.substr(20);
    CHECK(error_of(longer, l) == status::header_fields_too_large);
    // A head that never ends: stopped at the limit, whatever arrives after.
    CHECK(error_of("GET / HTTP/1.1\r\nX: " + std::string(10'000, 'x'), l) ==
          status::header_fields_too_large);
    CHECK(error_of("GET /" + std::string(200, 'u'), l) == status::header_fields_too_large);
  }

  TEST_CASE("a body limit: Content-Length above it is 413 before any body byte") {
    http::limits l;
    l.max_body_bytes = 10;
    parsed ok = parse("POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789", 0, l);
    REQUIRE(ok.requests.size() == 1);
    CHECK(ok.requests[0].body == "0123456789");
    // No body byte was sent: the head alone decides.
    CHECK(error_of("POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n", l) ==
          status::payload_too_large);
    CHECK(error_of("POST / HTTP/1.1\r\nContent-Length: 99999999999999\r\n\r\n", l) ==
          status::payload_too_large);
  }

  TEST_CASE("a chunked body limit: an announced chunk or the running total above it is 413") {
    http::limits l;
    l.max_body_bytes = 10;
    constexpr std::string_view head = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    parsed ok = parse(std::string(head) + "5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n", 1, l);
    REQUIRE(ok.requests.size() == 1);
    CHECK(ok.requests[0].body == "0123456789");
    CHECK(error_of(std::string(head) + "b\r\n", l) == status::payload_too_large);
    CHECK(error_of(std::string(head) + "6\r\n012345\r\n5\r\n", l) == status::payload_too_large);
    parsed byte_by_byte =
        parse(std::string(head) + "6\r\n012345\r\n6\r\n012345\r\n0\r\n\r\n", 1, l);
    CHECK(byte_by_byte.requests.empty());
    CHECK(byte_by_byte.error == status::payload_too_large);
  }

  TEST_CASE("malformed request lines and headers are 400") {
    for (std::string_view bad : {
             "GET\r\n\r\n"sv, "GET / HTTP/1.1 extra\r\n\r\n"sv, "G@T / HTTP/1.1\r\n\r\n"sv,
             "GET / HTTX/1.1\r\n\r\n"sv, "GET / HTTP/1.x\r\n\r\n"sv, "GET / HTTP/2.0\r\n\r\n"sv,
             "GET / HTTP/0.9\r\n\r\n"sv, "GET  HTTP/1.1\r\n\r\n"sv, "GET  / HTTP/1.1\r\n\r\n"sv,
             "GET / HTTP/1.1 \r\n\r\n"sv, "GET / HTTP/1.10\r\n\r\n"sv,
             "GET / HTTP/1.1\r\nNo colon here\r\n\r\n"sv, "GET / HTTP/1.1\r\nBad Name: x\r\n\r\n"sv,
             "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"sv,  // a TLS ClientHello
         }) {
      CAPTURE(bad);
      CHECK(error_of(bad) == status::bad_request);
    }
  }

  TEST_CASE("a CR that no LF follows in the head is 400, however the bytes are split (T35)") {
    // A bare CR read as a line end would hide a Transfer-Encoding from a proxy that does not
    // (CVE-2023-30589): here it would frame the body as chunked and echo "abc".
    for (std::string_view bad : {
             "POST /echo HTTP/1.1\r\nHost: x\r\nX-Abc: \rxTransfer-Encoding: chunked\r\n\r\n"
             "3\r\nabc\r\n0\r\n\r\n"sv,
             "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n"sv,
             "GET / HTTP/1.1\rHost: x\r\n\r\n"sv,
             "GET /\r HTTP/1.1\r\n\r\n"sv,
             "GET / HTTP/1.1\r\nHost: x\r\r\n\r\n"sv,
         }) {
      CAPTURE(bad);
      CHECK(error_of(bad) == status::bad_request);
      for (std::size_t piece = 1; piece <= 7; ++piece) {
        CAPTURE(piece);
        CHECK(parse(bad, piece).error == status::bad_request);
      }
    }
    // A CR in a body is data.
    parsed ok = parse("POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\na\rb", 1);
    REQUIRE(ok.error == status::ok);
    REQUIRE(ok.requests.size() == 1);
    CHECK(ok.requests[0].body == "a\rb");
  }

  TEST_CASE("leading empty lines and bare LF line ends are tolerated (RFC 9112 2.2)") {
    parsed r = parse("\r\n\r\nGET /lf HTTP/1.1\nHost: x\n\nGET /crlf HTTP/1.0\r\n\r\n", 1);
    REQUIRE(r.error == status::ok);
    REQUIRE(r.requests.size() == 2);
    CHECK(r.requests[0].target == "/lf");
    CHECK(r.requests[0].get("host") == "x");
    CHECK(r.requests[1].target == "/crlf");
  }

  TEST_CASE("Content-Length with Transfer-Encoding, or two Content-Lengths, is 400") {
    CHECK(error_of("POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n") ==
          status::bad_request);
    CHECK(error_of("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n") ==
          status::bad_request);
    CHECK(error_of("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n") ==
          status::bad_request);
    CHECK(error_of("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n") == status::bad_request);
    CHECK(error_of("POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n") == status::bad_request);
  }

  TEST_CASE("a Transfer-Encoding other than exactly chunked is 501; two of them are 400") {
    CHECK(error_of("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n") ==
          status::not_implemented);
    CHECK(error_of("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n") ==
          status::not_implemented);
    CHECK(error_of("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                   "Transfer-Encoding: chunked\r\n\r\n") == status::bad_request);
    parsed ok = parse("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n");
    CHECK(ok.requests.size() == 1);
  }

  TEST_CASE("invalid chunk sizes are 400") {
    constexpr std::string_view head = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (std::string_view bad :
         {"zz\r\n"sv, "-1\r\n"sv, "ffffffffffffffffff\r\n"sv, "5\r\nhelloX\r\n"sv, "\r\n"sv}) {
      CAPTURE(bad);
      CHECK(error_of(std::string(head) + std::string(bad)) == status::bad_request);
    }
  }

  TEST_CASE("an upgrade request stops after its head: the next bytes are left unused") {
    constexpr std::string_view head =
        "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    std::string in = std::string(head) + "\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58";
    for (std::size_t step : {0, 1}) {
      http::parser p({});
      std::string_view rest = in;
      while (!p.done()) {
        std::string_view piece = rest.substr(0, step == 0 ? rest.size() : step);
        std::size_t used = p.feed(piece);
        REQUIRE(p.error() == status::ok);
        rest.remove_prefix(used);
      }
      CHECK(rest == std::string_view(in).substr(head.size()));
      http::request q = p.take();
      CHECK(q.upgrade);
      CHECK(q.get("sec-websocket-key") == "dGhlIHNhbXBsZSBub25jZQ==");
    }
  }

  TEST_CASE("EOF between requests is clean; EOF inside one is 400") {
    http::parser p({});
    p.feed("\r\n");  // stray line ends before a request are allowed
    p.feed_eof();
    CHECK(p.idle());
    CHECK(p.error() == status::ok);
    for (std::string_view cut : {"GET / HT"sv, "GET / HTTP/1.1\r\nHost: x\r\n"sv,
                                 "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nabc"sv}) {
      CAPTURE(cut);
      http::parser q({});
      CHECK(q.feed(cut) == cut.size());
      CHECK_FALSE(q.idle());
      q.feed_eof();
      CHECK(q.error() == status::bad_request);
    }
  }

  TEST_CASE("Expect: 100-continue is reported once the head of a request with a body is in") {
    http::parser p({});
    p.feed("POST /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n");
    CHECK_FALSE(p.expects_continue());
    p.feed("\r\n");
    CHECK(p.head_done());
    CHECK(p.expects_continue());
    p.feed("abc");
    REQUIRE(p.done());
    CHECK(p.take().body == "abc");
    p.feed("GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n");  // no body: nothing to continue
    CHECK_FALSE(p.expects_continue());
  }

  TEST_CASE("mutated requests fed in random pieces end in requests or a status, never a crash") {
    const std::string seeds[] = {
        std::string(three_pipelined),
        "POST /e HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n0\r\nT: 1\r\n\r\n",
        "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x00",
    };
    http::limits l;
    l.max_head_bytes = 64;
    l.max_body_bytes = 16;
    std::uint32_t x = 12345;
    auto rnd = [&x](std::uint32_t n) {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      return x % n;
    };
    for (int round = 0; round < 20'000; ++round) {
      std::string in = seeds[rnd(3)];
      for (std::uint32_t k = rnd(4); k > 0; --k) {
        std::size_t at = rnd(static_cast<std::uint32_t>(in.size()));
        switch (rnd(3)) {
          case 0:
            in[at] = static_cast<char>(rnd(256));
            break;
          case 1:
            in.erase(at, 1);
            break;
          default:
            in.insert(in.begin() + static_cast<std::ptrdiff_t>(at), static_cast<char>(rnd(256)));
        }
      }
      http::parser p(l);
      std::string_view rest = in;
      while (!rest.empty() && p.error() == status::ok) {
        std::string_view piece = rest.substr(0, 1 + rnd(8));
        std::size_t used = p.feed(piece);
        REQUIRE(used <= piece.size());
        rest.remove_prefix(used);
        if (p.done()) {
          http::request q = p.take();
          CHECK(q.body.size() <= l.max_body_bytes);
          if (q.upgrade) break;
        } else if (used < piece.size()) {
          REQUIRE(p.error() != status::ok);
        }
      }
      p.feed_eof();
    }
  }

  TEST_CASE("take(request&) swaps buffers: a reused request keeps its capacity") {
    http::parser p({});
    http::request q;
    std::string in = "POST /x HTTP/1.1\r\nContent-Length: 1000\r\n\r\n" + std::string(1000, 'b');
    for (int round = 0; round < 3; ++round) {
      REQUIRE(p.feed(in) == in.size());
      REQUIRE(p.done());
      p.take(q);
      CHECK(q.body.size() == 1000);
      CHECK(q.headers.size() == 1);
    }
    // Both the caller's request and the parser's now hold a 1000-byte body buffer.
    p.feed("GET / HTTP/1.1\r\n\r\n");
    p.take(q);
    CHECK(q.body.empty());
    CHECK(q.body.capacity() >= 1000);
  }
}

namespace {

// A connected pair: [0] the client's end, [1] the server's.
task<std::pair<tcp_stream, tcp_stream>> connected_pair() {
  auto l = tcp_listener::bind("127.0.0.1:0");
  auto client = co_await tcp_stream::connect(l.local_address());
  auto accepted = co_await l.accept();
  co_return std::pair{std::move(client), std::move(accepted.stream)};
}

task<> send(tcp_stream& s, std::string_view text) {
  co_await s.write_all(text);
}

}  // namespace

TEST_SUITE("http_request_reader") {
  TEST_CASE("pipelined requests from a socket, then closed at EOF") {
    corio::runtime rt{{.workers = 1}};
    rt.block_on([]() -> task<> {
      auto [client, server] = co_await connected_pair();
      http::request_reader reader(server, http::limits{});
      co_await send(client, three_pipelined);
      client.shutdown(corio::net::shutdown_how::write);
      http::request q;
      std::vector<std::string> targets;
      status st;
      while ((st = co_await reader.next(q)) == status::ok) targets.push_back(q.target);
      CHECK(st == status::closed);
      CHECK(targets == std::vector<std::string>{"/a", "/b", "/c"});
      CHECK(reader.idle());
    }());
  }

  TEST_CASE("try_next answers from buffered bytes only") {
    corio::runtime rt{{.workers = 1}};
    rt.block_on([]() -> task<> {
      auto [client, server] = co_await connected_pair();
      http::request_reader reader(server, http::limits{});
      http::request q;
      CHECK_FALSE(reader.try_next(q).has_value());
      co_await send(client, "GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\nGET /3 HT");
      CHECK(co_await reader.next(q) == status::ok);  // one read takes in all of it
      CHECK(q.target == "/1");
      CHECK(reader.try_next(q) == status::ok);
      CHECK(q.target == "/2");
      CHECK_FALSE(reader.try_next(q).has_value());  // "/3" is incomplete
      CHECK_FALSE(reader.idle());
      co_await send(client, "TP/1.1\r\n\r\n");
      CHECK(co_await reader.next(q) == status::ok);
      CHECK(q.target == "/3");
    }());
  }

  TEST_CASE("a silent client and a slow one get request_timeout; a truncated request is 400") {
    corio::runtime rt{{.workers = 1}};
    rt.block_on([]() -> task<> {
      http::limits l;
      l.head_timeout = 200ms;
      {
        auto [client, server] = co_await connected_pair();
        http::request_reader reader(server, l);
        http::request q;
        auto t0 = std::chrono::steady_clock::now();
        CHECK(co_await reader.next(q) == status::request_timeout);
        auto waited = std::chrono::steady_clock::now() - t0;
        CHECK(waited >= 190ms);
        CHECK(waited < 2s);
        CHECK(reader.idle());
      }
      {
        // One byte every 30 ms: each read succeeds, but the head as a whole is late.
        auto [client, server] = co_await connected_pair();
        auto trickle = corio::spawn([](tcp_stream& c) -> task<> {
          for (char ch : std::string_view("GET / HTTP/1.1\r\nHost: slow\r\n\r\n")) {
            co_await c.write_all(std::string_view(&ch, 1));
            co_await corio::sleep_for(30ms);
          }
        }(client));
        http::request_reader reader(server, l);
        http::request q;
        CHECK(co_await reader.next(q) == status::request_timeout);
        CHECK_FALSE(reader.idle());
        co_await trickle;
      }
      {
        auto [client, server] = co_await connected_pair();
        http::request_reader reader(server, l);
        co_await send(client, "GET / HTTP/1.1\r\nHo");
        client.shutdown(corio::net::shutdown_how::write);
        http::request q;
        CHECK(co_await reader.next(q) == status::bad_request);
      }
    }());
  }

  TEST_CASE("Expect: 100-continue gets 100 Continue before the body is read") {
    corio::runtime rt{{.workers = 1}};
    rt.block_on([]() -> task<> {
      auto [client, server] = co_await connected_pair();
      http::request_reader reader(server, http::limits{});
      auto read_request =
          corio::spawn([](http::request_reader<tcp_stream>& r) -> task<std::string> {
            http::request q;
            CHECK(co_await r.next(q) == status::ok);
            co_return q.body;
          }(reader));
      co_await send(client,
                    "POST /echo HTTP/1.1\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
      std::string got(25, '\0');
      co_await client.read_exact(std::as_writable_bytes(std::span(got)));
      CHECK(got == "HTTP/1.1 100 Continue\r\n\r\n");
      co_await send(client, "body");
      CHECK(co_await read_request == "body");
    }());
  }

  TEST_CASE("after an upgrade request, buffered() holds the new protocol's first bytes") {
    corio::runtime rt{{.workers = 1}};
    rt.block_on([]() -> task<> {
      auto [client, server] = co_await connected_pair();
      http::request_reader reader(server, http::limits{});
      co_await send(client,
                    "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nFRAME");
      http::request q;
      // The head and the frame may come in two reads; the frame's bytes are never parsed.
      CHECK(co_await reader.next(q) == status::ok);
      CHECK(q.upgrade);
      std::string rest(reinterpret_cast<const char*>(reader.buffered().data()),
                       reader.buffered().size());
      if (rest.size() < 5) {
        std::string more(5 - rest.size(), '\0');
        co_await server.read_exact(std::as_writable_bytes(std::span(more)));
        rest += more;
      }
      CHECK(rest == "FRAME");
    }());
  }
}

namespace {

// What https_server hands to serve_connection: only read and write_all, as tasks (no shutdown,
// no ring operation that carries its own deadline).
struct task_stream {
  tcp_stream inner;
  task<std::size_t> read(std::span<std::byte> buf) { co_return co_await inner.read(buf); }
  task<> write_all(std::span<const std::byte> buf) { co_await inner.write_all(buf); }
};

}  // namespace

TEST_SUITE("http_server") {
  TEST_CASE("serve_connection works over a stream that has only read and write_all tasks") {
    corio::runtime rt{{.workers = 2}};
    rt.block_on([]() -> task<> {
      auto [client, server] = co_await connected_pair();
      http::server_options o;
      o.request_limits.head_timeout = 300ms;
      auto served = corio::spawn([](tcp_stream s, const http::server_options& o) -> task<> {
        task_stream ts{std::move(s)};
        co_await http::serve_connection(ts, o);
      }(std::move(server), o));
      co_await send(client,
                    "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
                    "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "3\r\nabc\r\n0\r\n\r\n"
                    "GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
      co_await served;  // the last request asked to close: serve_connection returned
      std::string got;
      std::array<std::byte, 4096> buf;
      while (std::size_t n = co_await client.read(buf))
        got.append(reinterpret_cast<const char*>(buf.data()), n);
      CHECK(got.find("HTTP/1.1 200 OK") == 0);
      std::size_t hello = got.find("Hello, World!");
      std::size_t echo = got.find("\r\n\r\nabc");
      std::size_t missing = got.find("HTTP/1.1 404 Not Found");
      CHECK(hello < echo);
      CHECK(echo < missing);
      CHECK(missing != std::string::npos);
      CHECK(got.find("Connection: close") > missing);
    }());
  }

  TEST_CASE("a stream of tasks still gets its 408: corio::timeout cancels the read task") {
    corio::runtime rt{{.workers = 1}};
    rt.block_on([]() -> task<> {
      auto [client, server] = co_await connected_pair();
      http::server_options o;
      o.request_limits.head_timeout = 200ms;
      auto served = corio::spawn([](tcp_stream s, const http::server_options& o) -> task<> {
        task_stream ts{std::move(s)};
        co_await http::serve_connection(ts, o);
      }(std::move(server), o));
      co_await send(client, "GET / HT");
      co_await served;
      // read_exact: one read may legally return less (fault injection's `short` does).
      constexpr std::string_view status = "HTTP/1.1 408 Request Timeout\r\n";
      std::string got(status.size(), '\0');
      co_await client.read_exact(std::as_writable_bytes(std::span(got)));
      CHECK(got == status);
    }());
  }
}
