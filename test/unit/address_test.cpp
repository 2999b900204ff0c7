// socket_address, unix_address and resolve.
// Invariant: parsing accepts exactly the documented forms and round-trips through to_string;
// bad input is a std::invalid_argument that quotes it.
#include <doctest/doctest.h>

#include "../support/invariants.hpp"

#include <corio/corio.hpp>

#include <fmt/format.h>

#include <sstream>
#include <string>

using corio::task;
using namespace corio::net;

TEST_SUITE("address") {
  TEST_CASE("IPv4 and IPv6 addresses parse and print") {
    auto a = socket_address::parse("127.0.0.1:8080");
    CHECK(a.is_v4());
    CHECK(a.port() == 8080);
    CHECK(a.ip() == "127.0.0.1");
    CHECK(a.to_string() == "127.0.0.1:8080");
    auto b = socket_address::parse("[::1]:443");
    CHECK(b.is_v6());
    CHECK(b.to_string() == "[::1]:443");
    CHECK(fmt::format("{}", b) == "[::1]:443");
    std::ostringstream os;
    os << a;
    CHECK(os.str() == "127.0.0.1:8080");
    CHECK(socket_address::parse("0.0.0.0:0").port() == 0);
    CHECK(socket_address::from_ip("::ffff:10.0.0.1", 1).is_v6());
    CHECK(a == socket_address::from_ip("127.0.0.1", 8080));
    CHECK_FALSE(a == b);
    CHECK(socket_address().empty());
  }

  TEST_CASE("malformed addresses are rejected with the text in the message") {
    for (const char* bad :
         {"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "1.2.3:80", "::1:80", "[127.0.0.1]:80",
          "[::1]80", "localhost:80", "1.2.3.4:-1", "1.2.3.4:80x"}) {
      CAPTURE(bad);
      CHECK_FALSE(socket_address::try_parse(bad).has_value());
      try {
        socket_address::parse(bad);
        CHECK(false);
      } catch (const std::invalid_argument& e) {
        CHECK(std::string(e.what()).find(std::string("'") + bad + "'") != std::string::npos);
      }
    }
    CHECK_THROWS_AS(socket_address::from_ip("999.1.1.1", 1), std::invalid_argument);
  }

  TEST_CASE("unix addresses: paths, abstract names, and limits") {
    auto p = unix_address::parse("/tmp/x.sock");
    CHECK_FALSE(p.is_abstract());
    CHECK(p.to_string() == "/tmp/x.sock");
    auto a = unix_address::parse("@corio-test");
    CHECK(a.is_abstract());
    CHECK(a.to_string() == "@corio-test");
    CHECK(fmt::format("{}", a) == "@corio-test");
    CHECK(unix_address().unnamed());
    CHECK_THROWS_AS(unix_address::path(std::string(200, 'x')), std::invalid_argument);
    CHECK_THROWS_AS(unix_address::path(""), std::invalid_argument);
  }

  TEST_CASE("resolve finds localhost without blocking a worker, and reports unknown names") {
    corio::run(
        []() -> task<> {
          auto all = co_await resolve("localhost", 8080);
          CHECK_FALSE(all.empty());
          for (auto& a : all) CHECK(a.port() == 8080);
          auto num = co_await resolve("127.0.0.1", 1);
          CHECK(num.at(0).to_string() == "127.0.0.1:1");
          bool failed = false;
          try {
            co_await resolve("no-such-host.invalid", 80);
          } catch (const std::system_error& e) {
            failed = true;
            CHECK(std::string(e.what()).find("no-such-host.invalid") != std::string::npos);
          }
          CHECK(failed);
        }(),
        {.workers = 1});
  }
}
