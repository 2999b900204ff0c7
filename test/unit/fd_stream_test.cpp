// fd_stream on pipes; borrowed streams.
// Invariants: bytes written into a pipe come out of it in order; a borrowed fd stays open; an
// owned one is closed with the stream.
#include <doctest/doctest.h>

#include "../support/invariants.hpp"
#include "../support/net.hpp"

#include <corio/corio.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <vector>

using corio::task;

TEST_SUITE("fd_stream") {
  TEST_CASE("a pipe carries 8 MiB from a writer task to a reader task") {
    corio::run(
        []() -> task<> {
          int p[2];
          REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
          corio::fd_stream r(p[0]), w(p[1]);
          auto out = corio::test::pattern(8u << 20, 5);
          auto writer =
              corio::spawn([](corio::fd_stream& w, std::vector<std::byte>& out) -> task<> {
                co_await w.write_all(out);
                co_await w.close();  // EOF for the reader
              }(w, out));
          std::vector<std::byte> in;
          std::vector<std::byte> buf(65536);
          while (std::size_t n = co_await r.read(buf))
            in.insert(in.end(), buf.begin(), buf.begin() + static_cast<long>(n));
          co_await writer;
          CHECK(in == out);
        }(),
        {.workers = 2});
  }

  TEST_CASE("writing into a pipe without a reader is EPIPE, not SIGPIPE (T19)") {
    bool epipe = corio::run(
        []() -> task<bool> {
          int p[2];
          REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
          ::close(p[0]);
          corio::fd_stream w(p[1]);
          auto r = co_await w.write_all(corio::as_bytes("nobody reads")).nothrow();
          co_return r.error() == std::errc::broken_pipe;
        }(),
        {.workers = 1});
    CHECK(epipe);
  }

  TEST_CASE("a borrowed fd is not closed; an owned one is") {
    int p[2];
    REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
    {
      auto b = corio::fd_stream::borrow(p[0]);
      corio::fd_stream owned(p[1]);
    }
    CHECK(::fcntl(p[0], F_GETFD) != -1);
    CHECK(::fcntl(p[1], F_GETFD) == -1);
    ::close(p[0]);
  }

  TEST_CASE("stdin_stream and stdout_stream borrow fds 0 and 1") {
    auto in = corio::stdin_stream();
    auto out = corio::stdout_stream();
    CHECK(in.native_handle() == 0);
    CHECK(out.native_handle() == 1);
  }
}
