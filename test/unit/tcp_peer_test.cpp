// What a TCP peer can do mid-stream: close its write side while still reading, or reset the
// connection while a write or a read is under way (T17 and T18 in docs/reliability.md).
// Invariants: an end of stream is a 0-byte read, every time, each one a single operation (no
// retry loop); the other direction keeps working after a half-close; a reset ends a blocked
// read or write promptly with ECONNRESET or EPIPE (or, for a read, an end of stream), never
// success and never SIGPIPE.
#include <doctest/doctest.h>

#include "../support/invariants.hpp"
#include "../support/net.hpp"

#include <corio/corio.hpp>

#include <array>
#include <chrono>
#include <vector>

using corio::task;
using namespace corio::net;
using namespace std::chrono_literals;

namespace {

// How long a reset may take to surface: 100 ms in the catalogue, with room for a loaded 2-core
// machine and the fault-injection build's late completions.
std::chrono::milliseconds reset_bound() {
  return corio::test::faults_injected() ? 1000ms : 200ms;
}

bool reset_error(const std::error_code& e) {
  return e == std::errc::connection_reset || e == std::errc::broken_pipe;
}

}  // namespace

TEST_SUITE("tcp_peer") {
  TEST_CASE(
      "the server shuts down its write side: the client reads EOF, again and again at one "
      "operation each, and can still send 1 MiB that the server reads whole (T17)") {
    corio::runtime rt({.workers = 1});
    rt.block_on([](corio::runtime& rt) -> task<> {
      auto l = tcp_listener::bind("127.0.0.1:0");
      auto server = corio::spawn([](tcp_listener& l) -> task<std::size_t> {
        auto a = co_await l.accept();
        a.stream.shutdown(shutdown_how::write);
        std::vector<std::byte> buf(65536);
        std::size_t total = 0;
        while (std::size_t n = co_await a.stream.read(buf)) total += n;
        co_return total;
      }(l));
      auto c = co_await tcp_stream::connect(l.local_address());
      std::array<std::byte, 64> buf;
      CHECK(co_await c.read(buf) == 0);
      // One worker, so the counter is this task's: each read after EOF is one SQE and returns 0.
      auto before = rt.stats().total().sqes_submitted;
      int zeros = 0;
      for (int i = 0; i < 100; ++i) zeros += co_await c.read(buf) == 0;
      CHECK(zeros == 100);
      CHECK(rt.stats().total().sqes_submitted - before == 100);
      auto out = corio::test::pattern(1 << 20, 17);
      co_await c.write_all(out);
      c.shutdown(shutdown_how::write);
      CHECK(co_await server == out.size());
    }(rt));
  }

  TEST_CASE(
      "a reset while a 10 MiB write_all is blocked on a full socket fails it promptly "
      "with ECONNRESET or EPIPE (T18)") {
    corio::run(
        []() -> task<> {
          auto l = tcp_listener::bind("127.0.0.1:0");
          auto c = co_await tcp_stream::connect(l.local_address());
          auto a = co_await l.accept();
          corio::test::set_buffers(c.native_handle(), 4096);
          corio::test::set_buffers(a.stream.native_handle(), 4096);
          std::vector<std::byte> big(10 << 20);
          auto writer = corio::spawn(
              [](tcp_stream& c, std::vector<std::byte>& big) -> task<corio::result<std::size_t>> {
                co_return co_await c.write_all(big).nothrow();
              }(c, big));
          co_await corio::sleep_for(50ms);  // the buffers are full: the writer waits
          corio::test::reset_on_close(a.stream.native_handle());
          auto reset_at = std::chrono::steady_clock::now();
          co_await a.stream.close();  // RST
          corio::result<std::size_t> w = co_await writer;
          auto took = std::chrono::steady_clock::now() - reset_at;
          REQUIRE(!w);
          CHECK_MESSAGE(reset_error(w.error()), w.error().message());
          CHECK(took < reset_bound());
        }(),
        {.workers = 2});
  }

  TEST_CASE("a reset while a read is blocked ends the read promptly (T18)") {
    corio::run(
        []() -> task<> {
          auto l = tcp_listener::bind("127.0.0.1:0");
          auto c = co_await tcp_stream::connect(l.local_address());
          auto a = co_await l.accept();
          auto reader = corio::spawn([](tcp_stream& c) -> task<corio::result<std::size_t>> {
            std::array<std::byte, 256> buf;
            co_return co_await c.read(buf).nothrow();
          }(c));
          co_await corio::sleep_for(20ms);  // the read is in the kernel
          corio::test::reset_on_close(a.stream.native_handle());
          auto reset_at = std::chrono::steady_clock::now();
          co_await a.stream.close();
          corio::result<std::size_t> r = co_await reader;
          auto took = std::chrono::steady_clock::now() - reset_at;
          // ECONNRESET, or 0 if the kernel reported the close before the reset.
          CHECK_MESSAGE((r ? *r == 0 : reset_error(r.error())),
                        (r ? "a value" : r.error().message()));
          CHECK(took < reset_bound());
        }(),
        {.workers = 2});
  }
}
