// TCP on loopback: echo of 1 byte to 16 MiB, many connections, partial transfers, resets,
// half-close, refused and timed-out connects, timeouts, cancellation, and close under a reader.
// Invariants: every byte arrives once and in order; every failure is an exception (or a result)
// naming the operation; no fd leaks (the per-test fd check); nothing is left in flight.
#include <doctest/doctest.h>

#include "../support/invariants.hpp"
#include "../support/net.hpp"

#include <corio/corio.hpp>

#include <fmt/format.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

using corio::task;
using namespace corio::net;
using namespace std::chrono_literals;
using corio::test::pattern;

namespace {

task<> echo_once(tcp_stream s) {
  std::vector<std::byte> buf(64 * 1024);
  for (;;) {
    std::size_t n = co_await s.read(buf);
    if (n == 0) co_return;
    co_await s.write_all(std::span(buf).first(n));
  }
}

// A server that echoes every connection until the listener's task is cancelled.
corio::join_handle<void> echo_server(tcp_listener& l) {
  return corio::spawn([](tcp_listener& l) -> task<> {
    auto in = l.incoming();
    while (auto c = co_await in.next()) corio::spawn(echo_once(std::move(c->stream))).detach();
  }(l));
}

// Both ends of one connection to `l`: the client's, then the server's. The caller keeps the
// listener: closing it is work of its own on the ring, which the zero-copy test's SQE and CQE
// counts must not see.
task<std::pair<tcp_stream, tcp_stream>> connected_pair(tcp_listener& l) {
  auto accept = corio::spawn([](tcp_listener& l) -> task<tcp_stream> {
    auto a = co_await l.accept();
    co_return std::move(a.stream);
  }(l));
  auto c = co_await tcp_stream::connect(l.local_address());
  auto srv = co_await accept;
  co_return std::pair{std::move(c), std::move(srv)};
}

}  // namespace

TEST_SUITE("tcp") {
  TEST_CASE("echo round trips from 1 byte to 16 MiB, with 1 and 2 workers") {
    for (std::size_t workers : {1u, 2u}) {
      corio::runtime rt{{.workers = workers}};
      rt.block_on([]() -> task<> {
        auto l = tcp_listener::bind("127.0.0.1:0");
        auto server = echo_server(l);
        for (std::size_t size : {std::size_t{1}, std::size_t{100}, std::size_t{64 * 1024 + 7},
                                 std::size_t{1} << 20, std::size_t{16} << 20}) {
          auto s = co_await tcp_stream::connect(l.local_address());
          std::vector<std::byte> out = pattern(size, size), in(size);
          // Write and read concurrently: 16 MiB does not fit in the socket buffers.
          auto writer =
              corio::spawn([](tcp_stream& s, std::vector<std::byte>& out) -> task<std::size_t> {
                co_return co_await s.write_all(out);
              }(s, out));
          std::size_t got = co_await s.read_exact(in);
          CHECK(co_await writer == size);
          CHECK(got == size);
          CHECK(in == out);
        }
        server.cancel();
        try {
          co_await server;
        } catch (const corio::operation_cancelled&) {
        }
      }());
    }
  }

  TEST_CASE("1000 concurrent connections each echo their own data") {
    int ok = corio::run(
        []() -> task<int> {
          auto l = tcp_listener::bind("127.0.0.1:0");
          auto server = echo_server(l);
          std::vector<corio::join_handle<bool>> clients;
          for (int i = 0; i < 1000; ++i) {
            clients.push_back(corio::spawn([](socket_address a, int i) -> task<bool> {
              auto s = co_await tcp_stream::connect(a);
              auto out = pattern(257, static_cast<unsigned>(i));
              co_await s.write_all(out);
              std::vector<std::byte> in(out.size());
              co_await s.read_exact(in);
              co_return in == out;
            }(l.local_address(), i)));
          }
          int ok = 0;
          for (auto& c : clients) ok += co_await c;
          server.cancel();
          co_return ok;
        }(),
        {.workers = 2});
    CHECK(ok == 1000);
  }

  TEST_CASE("partial reads and writes through tiny socket buffers are completed") {
    corio::run(
        []() -> task<> {
          auto l = tcp_listener::bind("127.0.0.1:0");
          auto [c, srv] = co_await connected_pair(l);
          corio::test::set_buffers(c.native_handle(), 16384);
          corio::test::set_buffers(srv.native_handle(), 16384);
          auto out = pattern(1 << 20, 9);
          auto writer = corio::spawn([](tcp_stream& s, std::vector<std::byte>& b) -> task<> {
            co_await s.write_all(b);
            s.shutdown(shutdown_how::write);
          }(c, out));
          std::vector<std::byte> in;
          std::array<std::byte, 1000> chunk;  // small reads: many partial completions
          for (;;) {
            std::size_t n = co_await srv.read(chunk);
            if (n == 0) break;
            in.insert(in.end(), chunk.begin(), chunk.begin() + static_cast<long>(n));
          }
          co_await writer;
          CHECK(in == out);
          // A read after EOF keeps returning 0.
          CHECK(co_await srv.read(chunk) == 0);
          CHECK(co_await srv.read(chunk) == 0);
        }(),
        {.workers = 2});
  }

  TEST_CASE("a write_all stopped mid-way says how many bytes went out (T15)") {
    corio::run(
        []() -> task<> {
          auto l = tcp_listener::bind("127.0.0.1:0");
          auto c = co_await tcp_stream::connect(l.local_address());
          auto srv = co_await l.accept();  // never reads
          corio::test::set_buffers(c.native_handle(), 4096);
          std::vector<std::byte> big(64 << 20);
          std::string what;
          try {
            co_await corio::timeout(50ms, c.write_all(big));
          } catch (const corio::timed_out& e) {
            what = e.what();
          }
          // No INFO here: doctest's contexts are per thread, and this task migrates.
          auto at = what.find(" after ");
          REQUIRE_MESSAGE(at != std::string::npos, what);
          CHECK_MESSAGE(what.find(fmt::format(" of {} bytes", big.size())) != std::string::npos,
                        what);
          long sent = std::atol(what.c_str() + at + 7);
          CHECK(sent > 0);
          CHECK(sent < static_cast<long>(big.size()));
          // The bytes counted are exactly the bytes the peer can read.
          srv.stream.set_read_timeout(200ms);
          std::vector<std::byte> sink(1 << 16);
          long received = 0;
          try {
            for (;;) received += static_cast<long>(co_await srv.stream.read(sink));
          } catch (const corio::timed_out&) {
          }
          CHECK(received == sent);
        }(),
        {.workers = 2});
  }

  TEST_CASE("half-close: the server reads to EOF and then still writes its answer") {
    corio::run(
        []() -> task<> {
          auto l = tcp_listener::bind("127.0.0.1:0");
          auto server = corio::spawn([](tcp_listener& l) -> task<> {
            auto a = co_await l.accept();
            std::string request;
            std::array<std::byte, 512> buf;
            while (std::size_t n = co_await a.stream.read(buf)) {
              request.append(corio::as_string_view(std::span(buf).first(n)));
            }
            std::string answer(1 << 20, 'x');
            answer.replace(0, request.size(), request);
            co_await a.stream.write_all(answer);
          }(l));
          auto c = co_await tcp_stream::connect(l.local_address());
          co_await c.write_all(corio::as_bytes("question"));
          c.shutdown(shutdown_how::write);
          std::string got(1 << 20, '\0');
          co_await c.read_exact(corio::as_writable_bytes(got));
          CHECK(got.substr(0, 8) == "question");
          CHECK(got.size() == (1u << 20));
          co_await server;
        }(),
        {.workers = 2});
  }

  TEST_CASE("read_exact reports an unexpected end of stream") {
    bool eof = corio::run(
        []() -> task<bool> {
          auto l = tcp_listener::bind("127.0.0.1:0");
          auto server = corio::spawn([](tcp_listener& l) -> task<> {
            auto a = co_await l.accept();
            co_await a.stream.write_all(corio::as_bytes("abc"));
          }(l));  // the stream closes when the task ends
          auto c = co_await tcp_stream::connect(l.local_address());
          std::array<std::byte, 10> buf;
          auto r = co_await c.read_exact(buf).nothrow();
          co_await server;
          co_return !r && r.error() == corio::errc::unexpected_eof;
        }(),
        {.workers = 1});
    CHECK(eof);
  }

  TEST_CASE("a peer reset is an error on read and on write, never success or SIGPIPE") {
    corio::run(
        []() -> task<> {
          auto l = tcp_listener::bind("127.0.0.1:0");
          auto c = co_await tcp_stream::connect(l.local_address());
          auto a = co_await l.accept();
          corio::test::reset_on_close(c.native_handle());
          co_await c.close();  // RST
          std::array<std::byte, 16> buf;
          auto r = co_await a.stream.read(buf).nothrow();
          CHECK((!r || *r == 0));  // ECONNRESET, or 0 if the kernel reported the close first
          std::vector<std::byte> big(1 << 20);
          auto w = co_await a.stream.write_all(big).nothrow();
          CHECK(!w);
          CHECK((w.error() == std::errc::broken_pipe || w.error() == std::errc::connection_reset));
        }(),
        {.workers = 1});
  }

  TEST_CASE("connect to a closed port is refused, with the address in the message") {
    std::string what = corio::run(
        []() -> task<std::string> {
          auto port = corio::test::unused_port();
          try {
            co_await tcp_stream::connect(socket_address::from_ip("127.0.0.1", port));
          } catch (const std::system_error& e) {
            CHECK(e.code() == std::errc::connection_refused);
            co_return e.what();
          }
          co_return "";
        }(),
        {.workers = 1});
    CHECK(what.find("connect") != std::string::npos);
    CHECK(what.find("127.0.0.1:") != std::string::npos);
  }

  TEST_CASE("connect with a timeout gives up on a listener that never accepts (T22)") {
    corio::run(
        []() -> task<> {
          // A listener with backlog 0 whose queue is filled: further SYNs are dropped.
          corio::test::full_listener full;
          auto t0 = std::chrono::steady_clock::now();
          bool timed_out = false;
          try {
            co_await tcp_stream::connect(full.address(), 300ms);
          } catch (const corio::timed_out&) {
            timed_out = true;
          }
          double ms = corio::test::ms_since(t0);
          CHECK(timed_out);
          CHECK(ms >= 290);
          CHECK(ms < 2000);
        }(),
        {.workers = 1});
  }

  TEST_CASE("timeouts on read, accept and connect; per-stream read timeouts") {
    corio::runtime rt{{.workers = 2}};
    rt.block_on([]() -> task<> {
      auto l = tcp_listener::bind("127.0.0.1:0");
      // accept
      bool t1 = false;
      try {
        co_await corio::timeout(20ms, l.accept());
      } catch (const corio::timed_out&) {
        t1 = true;
      }
      CHECK(t1);
      // read, through corio::timeout and through the stream's default
      auto c = co_await tcp_stream::connect(l.local_address());
      auto a = co_await l.accept();
      std::array<std::byte, 8> buf;
      auto r = co_await corio::timeout(20ms, a.stream.read(buf)).nothrow();
      CHECK(r.error() == std::errc::timed_out);
      a.stream.set_read_timeout(20ms);
      auto r2 = co_await a.stream.read(buf).nothrow();
      CHECK(r2.error() == std::errc::timed_out);
      // Data that arrives in time is read normally; the stream stays usable after timeouts.
      co_await c.write_all(corio::as_bytes("hi"));
      CHECK(co_await a.stream.read(buf) == 2);
      // incoming().next() with a timeout
      auto in = l.incoming();
      bool t3 = false;
      try {
        co_await corio::timeout(20ms, in.next());
      } catch (const corio::timed_out&) {
        t3 = true;
      }
      CHECK(t3);
    }());
    CHECK(rt.stats().total().ops_in_flight == 0);
  }

  TEST_CASE("cancel() wakes tasks blocked in accept, read, write, connect and incoming") {
    corio::runtime rt{{.workers = 2}};
    rt.block_on([]() -> task<> {
      auto l = tcp_listener::bind("127.0.0.1:0");
      // One connection for the blocked reader (its peer never writes), one for the blocked
      // writer (its peer never reads).
      auto quiet = co_await tcp_stream::connect(l.local_address());
      auto a = co_await l.accept();
      auto c = co_await tcp_stream::connect(l.local_address());
      auto deaf = co_await l.accept();
      corio::test::set_buffers(c.native_handle(), 4096);
      corio::test::set_buffers(deaf.stream.native_handle(), 4096);
      corio::test::full_listener full;
      std::vector<corio::join_handle<void>> blocked;
      blocked.push_back(corio::spawn([](tcp_listener& l) -> task<> { co_await l.accept(); }(l)));
      blocked.push_back(corio::spawn([](tcp_stream& s) -> task<> {
        std::array<std::byte, 8> b;
        co_await s.read(b);
      }(a.stream)));
      blocked.push_back(corio::spawn([](tcp_stream& s) -> task<> {
        std::vector<std::byte> big(64 << 20);  // nobody reads: the write blocks
        co_await s.write_all(big);
      }(c)));
      blocked.push_back(corio::spawn(
          [](socket_address to) -> task<> { co_await tcp_stream::connect(to); }(full.address())));
      blocked.push_back(corio::spawn([](tcp_listener& l) -> task<> {
        auto in = l.incoming();
        co_await in.next();
      }(l)));
      co_await corio::sleep_for(20ms);
      for (auto& h : blocked) h.cancel();
      int cancelled = 0;
      for (auto& h : blocked) {
        try {
          co_await h;
        } catch (const corio::operation_cancelled&) {
          ++cancelled;
        }
      }
      CHECK(cancelled == 5);
    }());
    CHECK(rt.stats().total().ops_in_flight == 0);
  }

  TEST_CASE(
      "closing a stream under a blocked reader: it fails, and fd reuse never crosses data (T07)") {
    for (std::size_t workers : {1u, 2u}) {
      corio::runtime rt{{.workers = workers}};
      int in_flight = rt.block_on([]() -> task<int> {
        auto l = tcp_listener::bind("127.0.0.1:0");
        int in_flight = 0;
        for (int round = 0; round < 50; ++round) {
          auto c1 = co_await tcp_stream::connect(l.local_address());
          auto a1 = co_await l.accept();
          std::atomic<bool> reading{false};
          auto reader =
              corio::spawn([](tcp_stream& s, std::atomic<bool>& reading) -> task<std::string> {
                std::array<std::byte, 64> b;
                reading = true;
                auto r = co_await s.read(b).nothrow();
                if (r) co_return std::string(corio::as_string_view(std::span(b).first(*r)));
                if (r.error() == corio::errc::stream_closed) co_return "closed";
                if (r.error() == std::errc::bad_file_descriptor) co_return "started after close";
                co_return r.error().message();
              }(a1.stream, reading));
          while (!reading.load()) co_await corio::yield_now();
          co_await corio::sleep_for(1ms);  // the read is submitted by now, normally
          co_await a1.stream.close();
          // The next connection may get the same fd number; its data must not reach the reader.
          auto c2 = co_await tcp_stream::connect(l.local_address());
          auto a2 = co_await l.accept();
          co_await c2.write_all(corio::as_bytes("tag-of-connection-2"));
          std::string got = co_await reader;
          // In flight at the close: stream_closed. Not yet submitted (a slow machine): EBADF.
          // Never data, and never the other connection's.
          CHECK((got == "closed" || got == "started after close"));
          in_flight += got == "closed";
          // read_exact: one read may legally return a prefix (fault injection's `short` does).
          std::array<std::byte, 19> b;  // "tag-of-connection-2"
          co_await a2.stream.read_exact(b);
          CHECK(corio::as_string_view(std::span(b)) == "tag-of-connection-2");
          // The first peer saw the close.
          std::array<std::byte, 8> eof;
          auto r = co_await c1.read(eof).nothrow();
          CHECK((!r || *r == 0));
        }
        co_return in_flight;
      }());
      MESSAGE("workers=" << workers << ": " << in_flight
                         << " of 50 reads were in flight at the close");
      CHECK(in_flight > 25);
      CHECK(rt.stats().total().ops_in_flight == 0);
    }
  }

  TEST_CASE("IPv6 loopback works when available") {
    if (!corio::test::ipv6_available()) {
      MESSAGE("no ::1 on this machine: skipped");
      return;
    }
    bool ok = corio::run(
        []() -> task<bool> {
          auto l = tcp_listener::bind("[::1]:0");
          CHECK(l.local_address().is_v6());
          auto server = echo_server(l);
          auto s = co_await tcp_stream::connect(l.local_address());
          co_await s.write_all(corio::as_bytes("v6"));
          std::array<std::byte, 2> b;
          co_await s.read_exact(b);
          server.cancel();
          co_return corio::as_string_view(b) == "v6";
        }(),
        {.workers = 1});
    CHECK(ok);
  }

  TEST_CASE("bind errors name the address; a busy port is EADDRINUSE") {
    corio::run(
        []() -> task<> {
          auto l = tcp_listener::bind("127.0.0.1:0");
          try {
            // SO_REUSEADDR does not allow two listeners on one port.
            auto l2 = tcp_listener::bind(l.local_address());
            CHECK(false);
          } catch (const std::system_error& e) {
            CHECK(e.code() == std::errc::address_in_use);
            CHECK(std::string(e.what()).find(l.local_address().to_string()) != std::string::npos);
          }
          CHECK_THROWS_AS(tcp_listener::bind("not an address"), std::invalid_argument);
          co_return;
        }(),
        {.workers = 1});
  }

  TEST_CASE("operations on a closed stream fail with EBADF; close twice is harmless") {
    corio::run(
        []() -> task<> {
          auto l = tcp_listener::bind("127.0.0.1:0");
          auto c = co_await tcp_stream::connect(l.local_address());
          co_await c.close();
          co_await c.close();
          CHECK_FALSE(c.is_open());
          std::array<std::byte, 4> b;
          auto r = co_await c.read(b).nothrow();
          CHECK(r.error() == std::errc::bad_file_descriptor);
        }(),
        {.workers = 1});
  }

  TEST_CASE(
      "writev sends every buffer in order, empty ones included, through tiny socket buffers") {
    corio::run(
        []() -> task<> {
          auto l = tcp_listener::bind("127.0.0.1:0");
          auto c = co_await tcp_stream::connect(l.local_address());
          auto a = co_await l.accept();
          corio::test::set_buffers(c.native_handle(), 4096);
          auto head = pattern(10, 1), big = pattern(300'000, 2), tail = pattern(7, 3);
          std::vector<std::byte> none;
          // Empty buffers at the end once made the gather write ask for one more send, whose 0
          // was taken for an end of stream.
          auto reader =
              corio::spawn([](tcp_stream& s, std::size_t n) -> task<std::vector<std::byte>> {
                std::vector<std::byte> in(n);
                co_await s.read_exact(in);
                co_return in;
              }(a.stream, head.size() + big.size() + tail.size()));
          // A named array: GCC 12 cannot build an initializer_list inside a co_await
          // expression ("array used as initializer").
          std::array<std::span<const std::byte>, 5> parts{head, none, big, tail, none};
          std::size_t n = co_await c.writev(parts);
          CHECK(n == head.size() + big.size() + tail.size());
          std::vector<std::byte> want = head;
          want.insert(want.end(), big.begin(), big.end());
          want.insert(want.end(), tail.begin(), tail.end());
          CHECK(co_await reader == want);
          std::array<std::span<const std::byte>, 2> empties{none, none};
          CHECK(co_await c.writev(empties) == 0);
        }(),
        {.workers = 1});
  }

  // A zero-copy send has two CQEs (its result and the release of the buffer) for one SQE, so
  // on one worker the CQEs outrun the SQEs by one per zero-copy send, and by nothing for plain
  // sends (every other operation here has one CQE per SQE, and none is in flight when counted).
  TEST_CASE("zero-copy writes deliver every byte in order and complete at the notification") {
    for (std::size_t workers : {1u, 2u}) {
      corio::runtime rt{{.workers = workers}};
      REQUIRE(rt.features().op_send_zc);  // Linux 6.0; the machines this runs on have it
      rt.block_on([](corio::runtime& rt) -> task<> {
        auto l = tcp_listener::bind("127.0.0.1:0");
        auto [c, srv] = co_await connected_pair(l);
        for (std::size_t threshold : {std::size_t{0}, std::size_t{16 * 1024}}) {
          c.set_zero_copy_writes(threshold);
          long before = corio::test::cqes_beyond_sqes(rt);
          long zero_copy_writes = 0;
          for (std::size_t size : {std::size_t{100}, std::size_t{64 * 1024 + 7},
                                   std::size_t{1} << 20, std::size_t{16} << 20}) {
            std::vector<std::byte> out = pattern(size, static_cast<unsigned>(size)), in(size);
            auto writer =
                corio::spawn([](tcp_stream& s, std::vector<std::byte>& out) -> task<std::size_t> {
                  co_return co_await s.write_all(out);
                }(c, out));
            CHECK(co_await srv.read_exact(in) == size);
            CHECK(co_await writer == size);
            CHECK(in == out);
            if (threshold != 0 && size >= threshold) ++zero_copy_writes;
          }
          // One write (write_some) too: it returns what the kernel took (all of it, unless
          // CORIO_FAULTS shortens the send).
          std::vector<std::byte> out = pattern(32 * 1024, 5), in(out.size());
          std::size_t n = co_await c.write(out);
          CHECK(n > 0);
          CHECK((n == out.size() || corio::test::faults_injected()));
          CHECK(co_await srv.read_exact(std::span(in).first(n)) == n);
          CHECK(std::equal(in.begin(), in.begin() + static_cast<long>(n), out.begin()));
          if (threshold != 0) ++zero_copy_writes;
          long extra = corio::test::cqes_beyond_sqes(rt) - before;
          if (rt.stats().workers.size() > 1) continue;  // wake-ups by MSG_RING: CQEs, no SQE
          if (threshold == 0) {
            CHECK(extra == 0);
          } else {
            // Partial sends resubmit: at least one notification per zero-copy write.
            CHECK(extra >= zero_copy_writes);
          }
        }
      }(rt));
    }
  }

  TEST_CASE("a zero-copy write_all to a peer that stops reading times out; shutdown reaps it") {
    corio::run(
        []() -> task<> {
          auto l = tcp_listener::bind("127.0.0.1:0");
          auto c = co_await tcp_stream::connect(l.local_address());
          auto srv = co_await l.accept();  // never reads
          corio::test::set_buffers(c.native_handle(), 4096);
          c.set_zero_copy_writes(1);
          std::vector<std::byte> big(64 << 20);
          std::string what;
          try {
            co_await corio::timeout(50ms, c.write_all(big));
          } catch (const corio::timed_out& e) {
            what = e.what();
          }
          CHECK_MESSAGE(what.find(" after ") != std::string::npos, what);
          // Another one is still in flight when the main task returns: block_on cancels it and
          // reaps both of its CQEs before the writer's frame, with its buffer, is destroyed.
          corio::spawn([](tcp_stream c) -> task<> {
            std::vector<std::byte> big(64 << 20);
            co_await c.write_all(big);
          }(std::move(c)))
              .detach();
          co_await corio::sleep_for(20ms);
        }(),
        {.workers = 2});
  }

  TEST_CASE("set_zero_copy_writes refuses a stream that is not a socket") {
    corio::run(
        []() -> task<> {
          int fds[2];
          REQUIRE(::pipe(fds) == 0);
          corio::fd_stream r(fds[0]), w(fds[1]);
          CHECK_THROWS_AS(w.set_zero_copy_writes(1 << 16), std::logic_error);
          w.set_zero_copy_writes(0);  // off is always fine
          co_return;
        }(),
        {.workers = 1});
  }
}
