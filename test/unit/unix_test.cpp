// Unix domain sockets (T21).
// Invariants: stream echo over paths and abstract names; a stale socket file is replaced, a live
// server's is not; datagrams keep their sender; socket files are removed when the listener goes.
#include <doctest/doctest.h>

#include "../support/invariants.hpp"

#include <corio/corio.hpp>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <string>

using corio::task;
using namespace corio::net;

namespace {

std::string temp_path(const char* name) {
  return std::string("/tmp/corio-test-") + std::to_string(::getpid()) + "-" + name;
}

bool exists(const std::string& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0;
}

task<bool> echo_via(unix_address addr) {
  auto l = unix_listener::bind(addr);
  auto server = corio::spawn([](unix_listener& l) -> task<> {
    auto in = l.incoming();
    auto c = co_await in.next();
    // read_exact: one read may legally return a prefix (fault injection's `short` does), and
    // closing with bytes unread would reset the connection.
    std::array<std::byte, 9> buf;  // "over unix"
    co_await c->stream.read_exact(buf);
    co_await c->stream.write_all(buf);
  }(l));
  auto s = co_await unix_stream::connect(addr);
  co_await s.write_all(corio::as_bytes("over unix"));
  std::array<std::byte, 9> got;
  co_await s.read_exact(got);
  co_await server;
  co_return corio::as_string_view(got) == "over unix";
}

}  // namespace

TEST_SUITE("unix") {
  TEST_CASE("stream echo over a path and over an abstract name; the path is removed afterwards") {
    std::string path = temp_path("echo.sock");
    CHECK(corio::run(echo_via(unix_address::path(path)), {.workers = 2}));
    CHECK_FALSE(exists(path));
    CHECK(corio::run(echo_via(unix_address::abstract("corio-test-" + std::to_string(::getpid()))),
                     {.workers = 2}));
  }

  TEST_CASE("a stale socket file is replaced; a live server's is not (T21a, T21b)") {
    std::string path = temp_path("stale.sock");
    // A server that died: fork a child that binds and is killed, leaving the file behind.
    pid_t child = ::fork();
    if (child == 0) {
      int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
      sockaddr_un sun{};
      sun.sun_family = AF_UNIX;
      std::snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path.c_str());
      ::bind(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun);
      ::listen(fd, 1);
      ::kill(::getpid(), SIGKILL);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    REQUIRE(exists(path));
    corio::run(
        [](std::string path) -> task<> {
          auto l = unix_listener::bind(unix_address::path(path));  // replaces the stale file
          // A second listener on the same path, while the first is alive, fails and leaves it.
          try {
            auto l2 = unix_listener::bind(unix_address::path(path));
            CHECK(false);
          } catch (const std::system_error& e) {
            CHECK(e.code() == std::errc::address_in_use);
          }
          CHECK(exists(path));
          auto s = co_await unix_stream::connect(unix_address::path(path));  // l still answers
          auto a = co_await l.accept();
          CHECK(a.stream.is_open());
        }(path),
        {.workers = 1});
    CHECK_FALSE(exists(path));
  }

  TEST_CASE("a regular file in the way is not replaced") {
    std::string path = temp_path("regular");
    FILE* f = std::fopen(path.c_str(), "w");
    std::fclose(f);
    CHECK_THROWS_AS(unix_listener::bind(unix_address::path(path)), std::system_error);
    CHECK(exists(path));
    ::unlink(path.c_str());
  }

  TEST_CASE("socketpair streams and datagrams") {
    corio::run(
        []() -> task<> {
          auto [a, b] = unix_stream::pair();
          co_await a.write_all(corio::as_bytes("pair"));
          std::array<std::byte, 4> got;
          co_await b.read_exact(got);
          CHECK(corio::as_string_view(got) == "pair");
          auto [x, y] = unix_datagram::pair();
          co_await x.send(corio::as_bytes("dgram"));
          std::array<std::byte, 16> buf;
          std::size_t n = co_await y.recv(buf);
          CHECK(corio::as_string_view(std::span(buf).first(n)) == "dgram");
        }(),
        {.workers = 1});
  }

  TEST_CASE("datagrams over paths keep their sender address") {
    std::string pa = temp_path("dg-a"), pb = temp_path("dg-b");
    corio::run(
        [](std::string pa, std::string pb) -> task<> {
          auto a = unix_datagram::bind(unix_address::path(pa));
          auto b = unix_datagram::bind(unix_address::path(pb));
          co_await a.send_to(corio::as_bytes("hello"), unix_address::path(pb));
          std::array<std::byte, 16> buf;
          auto d = co_await b.recv_from(buf);
          CHECK(corio::as_string_view(std::span(buf).first(d.size)) == "hello");
          CHECK(d.from.to_string() == pa);
        }(pa, pb),
        {.workers = 1});
    ::unlink(pa.c_str());
    ::unlink(pb.c_str());
  }
}
