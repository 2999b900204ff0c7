// UDP on loopback (T20).
// Invariants: datagrams arrive whole (or flagged truncated); several receivers share one socket
// without losing or duplicating datagrams; a connected socket reports ECONNREFUSED, an
// unconnected one keeps working.
#include <doctest/doctest.h>

#include "../support/invariants.hpp"
#include "../support/net.hpp"

#include <corio/corio.hpp>

#include <array>
#include <atomic>
#include <set>
#include <vector>

using corio::task;
using namespace corio::net;
using namespace std::chrono_literals;

TEST_SUITE("udp") {
  TEST_CASE("send_to and recv_from round-trip with the sender's address") {
    corio::run(
        []() -> task<> {
          auto a = udp_socket::bind("127.0.0.1:0");
          auto b = udp_socket::bind("127.0.0.1:0");
          co_await a.send_to(corio::as_bytes("ping"), b.local_address());
          std::array<std::byte, 64> buf;
          auto d = co_await b.recv_from(buf);
          CHECK(corio::as_string_view(std::span(buf).first(d.size)) == "ping");
          CHECK(d.from == a.local_address());
          CHECK_FALSE(d.truncated);
          // connected: recv and send without addresses
          b.connect(a.local_address());
          co_await b.send(corio::as_bytes("pong"));
          auto n = co_await a.recv(buf);
          CHECK(corio::as_string_view(std::span(buf).first(n)) == "pong");
        }(),
        {.workers = 2});
  }

  TEST_CASE("a datagram larger than the buffer is reported truncated (T20a)") {
    corio::run(
        []() -> task<> {
          auto a = udp_socket::bind("127.0.0.1:0");
          auto b = udp_socket::bind("127.0.0.1:0");
          std::vector<std::byte> big(9000, std::byte{7});
          co_await a.send_to(big, b.local_address());
          std::array<std::byte, 1500> buf;
          auto d = co_await b.recv_from(buf);
          CHECK(d.truncated);
          CHECK(d.size == 1500);
        }(),
        {.workers = 1});
  }

  TEST_CASE(
      "ICMP refusal: a connected socket gets ECONNREFUSED, an unconnected one goes on (T20b)") {
    corio::run(
        []() -> task<> {
          auto port = corio::test::unused_port();
          auto dead = socket_address::from_ip("127.0.0.1", port);
          auto c = udp_socket::bind("127.0.0.1:0");
          c.connect(dead);
          co_await c.send(corio::as_bytes("x"));
          std::array<std::byte, 8> buf;
          auto r = co_await corio::timeout(1s, c.recv(buf)).nothrow();
          CHECK(r.error() == std::errc::connection_refused);
          auto u = udp_socket::bind("127.0.0.1:0");
          co_await u.send_to(corio::as_bytes("x"), dead);
          co_await u.send_to(corio::as_bytes("y"), u.local_address());
          auto d = co_await u.recv_from(buf);
          CHECK(corio::as_string_view(std::span(buf).first(d.size)) == "y");
        }(),
        {.workers = 1});
  }

  TEST_CASE("several tasks receive on one socket: each datagram exactly once") {
    std::set<int> seen = corio::run(
        []() -> task<std::set<int>> {
          auto server = udp_socket::bind("127.0.0.1:0");
          std::set<int> seen;
          std::atomic<int> received{0};
          std::vector<corio::join_handle<void>> receivers;
          for (int r = 0; r < 4; ++r) {
            receivers.push_back(corio::spawn([](udp_socket& s, std::set<int>& seen,
                                                std::atomic<int>& received) -> task<> {
              std::array<std::byte, 16> buf;
              for (;;) {
                auto d = co_await s.recv_from(buf);
                int v = std::stoi(std::string(corio::as_string_view(std::span(buf).first(d.size))));
                seen.insert(v);  // one worker: no data race on the set
                ++received;
              }
            }(server, seen, received)));
          }
          auto client = udp_socket::bind("127.0.0.1:0");
          for (int i = 0; i < 200; ++i) {
            co_await client.send_to(corio::as_bytes(std::to_string(i)), server.local_address());
            if (i % 20 == 0) co_await corio::sleep_for(1ms);  // stay under the receive buffer
          }
          while (received.load() < 200) co_await corio::sleep_for(1ms);
          for (auto& r : receivers) r.cancel();
          co_return seen;
        }(),
        {.workers = 1});
    CHECK(seen.size() == 200);
  }

  TEST_CASE("datagrams of 65507 bytes round-trip intact (T20d)") {
    corio::run(
        []() -> task<> {
          auto a = udp_socket::bind("127.0.0.1:0");
          auto b = udp_socket::bind("127.0.0.1:0");
          auto out = corio::test::pattern(65507, 3);
          co_await a.send_to(out, b.local_address());
          std::vector<std::byte> in(65507);
          auto d = co_await b.recv_from(in);
          CHECK(d.size == out.size());
          CHECK(in == out);
        }(),
        {.workers = 1});
  }

  TEST_CASE("a read timeout on a UDP socket") {
    corio::run(
        []() -> task<> {
          auto s = udp_socket::bind("127.0.0.1:0");
          s.set_read_timeout(20ms);
          std::array<std::byte, 8> buf;
          auto r = co_await s.recv_from(buf).nothrow();
          CHECK(r.error() == std::errc::timed_out);
        }(),
        {.workers = 1});
  }
}
