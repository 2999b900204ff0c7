// read_some_pooled: multishot receive into the worker's provided buffers, on loopback sockets,
// pipes and files. Invariants: every byte arrives once and in order, whatever the pool size
// (down to none: heap buffers) and however long the reader holds buffers; a timed-out or
// cancelled read loses nothing; closing or dropping a stream mid-receive returns every buffer
// (T04); a dry pool never stops or spins a stream (T13); every read pool is gone after each
// test (the shared main's invariant).
#include <doctest/doctest.h>

#include "../support/invariants.hpp"
#include "../support/net.hpp"

#include <corio/corio.hpp>

#include <fmt/format.h>

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

using corio::pooled_buffer;
using corio::task;
using namespace corio::net;
using namespace std::chrono_literals;
using corio::test::pattern;

namespace {

// Connected loopback pair: {accepted, connected}.
task<std::pair<tcp_stream, tcp_stream>> tcp_pair() {
  auto l = tcp_listener::bind("127.0.0.1:0");
  auto c = co_await tcp_stream::connect(l.local_address());
  auto a = co_await l.accept();
  co_return std::pair<tcp_stream, tcp_stream>(std::move(a.stream), std::move(c));
}

std::atomic<long> pool_reads{0}, heap_reads{0};

// Reads until the end of the stream with pooled reads, holding each buffer `hold` first;
// returns the bytes.
task<std::vector<std::byte>> drain_pooled(tcp_stream& s, std::chrono::microseconds hold) {
  std::vector<std::byte> got;
  for (;;) {
    pooled_buffer b = co_await s.read_some_pooled();
    if (b.empty()) break;
    ++(b.from_pool() ? pool_reads : heap_reads);
    if (hold.count() > 0) co_await corio::sleep_for(hold);
    got.insert(got.end(), b.data(), b.data() + b.size());
  }
  co_return got;
}

// Pooled reads until `n` bytes came (a write may arrive in pieces: short writes under fault
// injection).
task<std::string> read_n(tcp_stream& s, std::size_t n) {
  std::string got;
  while (got.size() < n) {
    pooled_buffer b = co_await s.read_some_pooled();
    if (b.empty()) break;
    got += b.view();
  }
  co_return got;
}

task<> write_and_close(tcp_stream s, std::vector<std::byte> data, std::size_t chunk) {
  for (std::size_t off = 0; off < data.size(); off += chunk) {
    std::size_t n = std::min(chunk, data.size() - off);
    co_await s.write_all(std::span(data).subspan(off, n));
  }
  co_await s.close();
}

}  // namespace

TEST_SUITE("pooled_read") {
  TEST_CASE("a stream's bytes arrive whole and in order, with 1 and 2 workers and any pool") {
    struct config {
      std::size_t workers;
      unsigned buffers;
      std::size_t size;
    };
    for (config c : {config{1, 1024, 4096}, config{2, 1024, 4096}, config{1, 4, 512},
                     config{2, 2, 64}, config{1, 0, 4096}, config{2, 0, 1000}}) {
      CAPTURE(c.workers);
      CAPTURE(c.buffers);
      corio::runtime rt{
          {.workers = c.workers, .read_pool_buffers = c.buffers, .read_pool_buffer_size = c.size}};
      std::size_t max_read = rt.block_on([](std::size_t size) -> task<std::size_t> {
        auto [a, b] = co_await tcp_pair();
        std::vector<std::byte> out = pattern(1 << 20, 7);
        auto writer = corio::spawn(write_and_close(std::move(b), out, 10'000));
        std::vector<std::byte> got;
        std::size_t largest = 0;
        for (;;) {
          pooled_buffer buf = co_await a.read_some_pooled();
          if (buf.empty()) break;
          largest = std::max(largest, buf.size());
          got.insert(got.end(), buf.data(), buf.data() + buf.size());
        }
        co_await writer;
        CHECK(got.size() == out.size());
        CHECK(got == out);
        // A second read after the end of the stream sees the end again.
        pooled_buffer again = co_await a.read_some_pooled();
        CHECK(again.empty());
        CHECK(largest <= size);
        co_return largest;
      }(c.size));
      CHECK(max_read > 0);
    }
  }

  TEST_CASE("bytes that arrive between reads queue up and come without suspending") {
    corio::runtime rt{{.workers = 1}};
    rt.block_on([]() -> task<> {
      auto [a, b] = co_await tcp_pair();
      co_await b.write_all(std::string_view("first"));
      pooled_buffer x = co_await a.read_some_pooled();
      CHECK(x.from_pool());
      std::string first = std::string(x.view()) + co_await read_n(a, 5 - x.size());
      CHECK(first == "first");
      // The multishot receive stays armed: these land in the queue while nobody reads.
      for (int i = 0; i < 5; ++i) {
        co_await b.write_all(std::string_view("0123456789"));
        co_await corio::sleep_for(2ms);
      }
      std::string got;
      while (got.size() < 50) {
        pooled_buffer y = co_await a.read_some_pooled();
        REQUIRE(!y.empty());
        got += y.view();
      }
      CHECK(got == "01234567890123456789012345678901234567890123456789");
    }());
  }

  TEST_CASE("a timed-out or cancelled read loses nothing: the bytes go to the next read") {
    corio::runtime rt{{.workers = 1}};
    rt.block_on([]() -> task<> {
      auto [a, b] = co_await tcp_pair();
      a.set_read_timeout(20ms);
      auto t0 = std::chrono::steady_clock::now();
      CHECK_THROWS_AS(co_await a.read_some_pooled(), corio::timed_out);
      CHECK(corio::test::ms_since(t0) >= 19.0);
      co_await b.write_all(std::string_view("kept"));
      a.set_read_timeout(0ms);
      CHECK(co_await read_n(a, 4) == "kept");

      // corio::timeout around the read, then a cancel of a task blocked in one.
      CHECK_THROWS_AS(co_await corio::timeout(10ms, a.read_some_pooled()), corio::timed_out);
      auto reader = corio::spawn([](tcp_stream& s) -> task<std::string> {
        pooled_buffer y = co_await s.read_some_pooled();
        co_return std::string(y.view());
      }(a));
      co_await corio::sleep_for(5ms);
      reader.cancel();
      CHECK_THROWS_AS(co_await reader, corio::operation_cancelled);
      co_await b.write_all(std::string_view("after"));
      CHECK(co_await read_n(a, 5) == "after");
    }());
  }

  TEST_CASE("errors: a reset peer, a close under a waiting read, a closed stream") {
    corio::runtime rt{{.workers = 1}};
    rt.block_on([]() -> task<> {
      {
        auto [a, b] = co_await tcp_pair();
        linger lg{1, 0};
        ::setsockopt(b.native_handle(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        co_await b.write_all(std::string_view("x"));
        pooled_buffer first = co_await a.read_some_pooled();
        CHECK(first.view() == "x");
        co_await b.close();  // RST
        auto r = co_await a.read_some_pooled().nothrow();
        REQUIRE(!r);
        CHECK(r.error() == std::errc::connection_reset);
      }
      {
        auto [a, b] = co_await tcp_pair();
        auto reader = corio::spawn([](tcp_stream& s) -> task<std::error_code> {
          auto r = co_await s.read_some_pooled().nothrow();
          co_return r ? std::error_code{} : r.error();
        }(a));
        for (int i = 0; i < 2000 && !a.reads_pooled(); ++i) co_await corio::sleep_for(1ms);
        co_await corio::sleep_for(1ms);  // the reader is suspended in its read by now
        co_await a.close();
        std::error_code e = co_await reader;
        CHECK(e == corio::errc::stream_closed);
        // Reading a closed stream names the operation and the errno.
        try {
          (void)co_await a.read_some_pooled();
          FAIL("no exception");
        } catch (const std::system_error& ex) {
          CHECK(ex.code() == std::errc::bad_file_descriptor);
          CHECK(std::string(ex.what()).find("read_some_pooled") != std::string::npos);
        }
      }
    }());
  }

  TEST_CASE("two pooled reads at once on one stream are refused") {
    corio::runtime rt{{.workers = 1}};
    rt.block_on([]() -> task<> {
      auto [a, b] = co_await tcp_pair();
      auto reader = corio::spawn(
          [](tcp_stream& s) -> task<std::string> { co_return co_await read_n(s, 3); }(a));
      // Until the reader's read has started (its first call creates the stream's reader).
      for (int i = 0; i < 2000 && !a.reads_pooled(); ++i) co_await corio::sleep_for(1ms);
      REQUIRE(a.reads_pooled());
      CHECK_THROWS_AS(co_await a.read_some_pooled(), std::logic_error);
      co_await b.write_all(std::string_view("abc"));
      CHECK(co_await reader == "abc");
    }());
  }

  TEST_CASE("read() on a stream read with read_some_pooled is refused, not silently starved") {
    corio::runtime rt{{.workers = 1}};
    rt.block_on([]() -> task<> {
      auto [a, b] = co_await tcp_pair();
      CHECK(!a.reads_pooled());
      co_await b.write_all(std::string_view("x"));
      CHECK(co_await read_n(a, 1) == "x");
      CHECK(a.reads_pooled());
      std::array<std::byte, 8> buf;
      CHECK_THROWS_AS((void)a.read(buf), std::logic_error);
      CHECK_THROWS_AS((void)a.read_exact(buf), std::logic_error);
      // The bytes stay with the pooled receive.
      co_await b.write_all(std::string_view("yz"));
      CHECK(co_await read_n(a, 2) == "yz");
    }());
  }

  TEST_CASE("pipes and files read one provided buffer per call") {
    corio::runtime rt{{.workers = 2, .read_pool_buffers = 8, .read_pool_buffer_size = 1000}};
    rt.block_on([]() -> task<> {
      int p[2];
      REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
      corio::fd_stream in(p[0]);
      std::vector<std::byte> out = pattern(100'000, 3);
      std::thread w([&] {
        std::size_t off = 0;
        while (off < out.size()) {
          ssize_t n =
              ::write(p[1], out.data() + off, std::min<std::size_t>(3000, out.size() - off));
          if (n <= 0) break;
          off += static_cast<std::size_t>(n);
        }
        ::close(p[1]);
      });
      std::vector<std::byte> got;
      for (;;) {
        pooled_buffer b = co_await in.read_some_pooled();
        if (b.empty()) break;
        CHECK(b.size() <= 1000);
        got.insert(got.end(), b.data(), b.data() + b.size());
      }
      w.join();
      CHECK(got == out);
    }());
  }

  TEST_CASE("buffers come back when streams are cancelled, closed or dropped mid-stream (T04)") {
    // 8 buffers of 4 KiB, 4 sockets: every iteration sends 16 KiB on each, reads a little, then
    // cancels the reads and drops or closes the streams with bytes still queued and a receive
    // armed. After each iteration the pool must be whole again.
    corio::runtime rt{{.workers = 1, .read_pool_buffers = 8, .read_pool_buffer_size = 4096}};
    long rounds = corio::test::scaled(200);
    rt.block_on([](long rounds) -> task<> {
      auto l = tcp_listener::bind("127.0.0.1:0");
      std::vector<std::byte> blob = pattern(16 * 1024, 1);
      for (long i = 0; i < rounds; ++i) {
        std::vector<tcp_stream> servers, clients;
        for (int k = 0; k < 4; ++k) {
          clients.push_back(co_await tcp_stream::connect(l.local_address()));
          servers.push_back((co_await l.accept()).stream);
        }
        for (auto& c : clients) co_await c.write_all(blob);
        std::vector<corio::join_handle<std::size_t>> readers;
        for (auto& s : servers) {
          readers.push_back(corio::spawn([](tcp_stream& s) -> task<std::size_t> {
            for (;;) {
              pooled_buffer b = co_await s.read_some_pooled();
              if (b.empty()) co_return 0;
              co_await corio::sleep_for(1ms);  // hold the buffer: the pool runs dry
            }
          }(s)));
        }
        co_await corio::sleep_for(std::chrono::microseconds(500 + (i % 7) * 300));
        for (auto& r : readers) r.cancel();
        for (auto& r : readers) CHECK_THROWS_AS(co_await r, corio::operation_cancelled);
        if (i % 2 == 0) {
          for (auto& s : servers) co_await s.close();
        }
        servers.clear();  // drops the readers: queued buffers go back, armed receives cancel
        clients.clear();
        // The dropped streams' receives end with their cancellation's CQE, a reap or two later
        // (more under fault injection, which holds CQEs back): wait for it, within a bound.
        auto until = std::chrono::steady_clock::now() + 2s;
        while (corio::detail::current_read_pool_out() != 0 &&
               std::chrono::steady_clock::now() < until) {
          co_await corio::sleep_for(1ms);
        }
        CHECK(corio::detail::current_read_pool_out() == 0);
      }
    }(rounds));
    CHECK(corio::detail::live_read_pools() == 0);
  }

  TEST_CASE("a dry pool never stops or spins a stream (T13)") {
    // 4 buffers of 4 KiB shared by 16 connections that each send 256 KiB in bursts, the reader
    // holding each buffer 2 ms: most reads find the pool empty and go into heap buffers.
    corio::runtime rt{{.workers = 2, .read_pool_buffers = 4, .read_pool_buffer_size = 4096}};
    pool_reads = 0;
    heap_reads = 0;
    auto t0 = std::chrono::steady_clock::now();
    rt.block_on([]() -> task<> {
      auto l = tcp_listener::bind("127.0.0.1:0");
      constexpr int conns = 16;
      std::vector<corio::join_handle<bool>> checks;
      for (int k = 0; k < conns; ++k) {
        auto c = co_await tcp_stream::connect(l.local_address());
        auto s = (co_await l.accept()).stream;
        std::vector<std::byte> data = pattern(256 * 1024, static_cast<std::size_t>(k));
        corio::spawn(write_and_close(std::move(c), data, 32 * 1024)).detach();
        checks.push_back(corio::spawn([](tcp_stream s, std::vector<std::byte> want) -> task<bool> {
          std::vector<std::byte> got = co_await drain_pooled(s, 2000us);
          co_return got == want;
        }(std::move(s), std::move(data))));
      }
      for (auto& c : checks) CHECK(co_await c);
    }());
    auto stats = rt.stats();
    std::uint64_t enters = 0;
    for (auto& w : stats.workers) enters += w.enter_calls;
    double secs = corio::test::ms_since(t0) / 1000.0;
    // No spin: each enter is a poll or a park of a worker that waits for bytes or a timer; a
    // spinning re-arm would make hundreds of thousands per second.
    CHECK_MESSAGE(static_cast<double>(enters) / secs < 50'000, "enters ", enters, " in ", secs,
                  " s");
    // Both kinds: the pool ran dry (heap reads), and receives were armed on it again once
    // buffers came back (pool reads after the first dry spell).
    CHECK(heap_reads.load() > 0);
    CHECK(stats.total().pool_dry_reads > 0);
    CHECK(stats.total().pool_buffers_out == 0);  // the session is over: the pool was retired
    CHECK(pool_reads.load() > 16);
  }

  TEST_CASE("a stream keeps its queued bytes across sessions; buffers outlive the runtime") {
    pooled_buffer kept;
    {
      corio::runtime rt{{.workers = 1}};
      std::pair<tcp_stream, tcp_stream> pair = rt.block_on(tcp_pair());
      rt.block_on([](std::pair<tcp_stream, tcp_stream>& p, pooled_buffer& keep) -> task<> {
        co_await p.second.write_all(std::string_view("o"));
        keep = co_await p.first.read_some_pooled();
        co_await p.second.write_all(std::string_view("two"));
        co_await corio::sleep_for(5ms);  // "two" waits in the queue when the session ends
      }(pair, kept));
      CHECK(corio::detail::live_read_pools() == 1);  // `kept` holds the retired pool
      rt.block_on([](std::pair<tcp_stream, tcp_stream>& p) -> task<> {
        CHECK(co_await read_n(p.first, 3) == "two");
        co_await p.second.write_all(std::string_view("three"));
        CHECK(co_await read_n(p.first, 5) == "three");
      }(pair));
    }
    CHECK(kept.view() == "o");
    kept.reset();
    CHECK(corio::detail::live_read_pools() == 0);
  }

  TEST_CASE("pooled reads by tasks that migrate between workers") {
    // Echo over 32 connections with 2 workers: the readers are stolen back and forth, so many
    // reads start on a worker other than the one whose ring receives for the stream.
    corio::runtime rt{{.workers = 2, .read_pool_buffers = 64, .read_pool_buffer_size = 1024}};
    rt.block_on([]() -> task<> {
      auto l = tcp_listener::bind("127.0.0.1:0");
      auto server = corio::spawn([](tcp_listener& l) -> task<> {
        auto in = l.incoming();
        while (auto c = co_await in.next()) {
          corio::spawn([](tcp_stream s) -> task<> {
            for (;;) {
              pooled_buffer b = co_await s.read_some_pooled();
              if (b.empty()) co_return;
              co_await corio::yield_now();  // another worker may take the task here
              co_await s.write_all(b.bytes());
            }
          }(std::move(c->stream)))
              .detach();
        }
      }(l));
      std::vector<corio::join_handle<bool>> clients;
      for (int k = 0; k < 32; ++k) {
        clients.push_back(corio::spawn([](socket_address to, int k) -> task<bool> {
          auto s = co_await tcp_stream::connect(to);
          std::vector<std::byte> out = pattern(64 * 1024, static_cast<std::size_t>(k)),
                                 in(out.size());
          auto w = corio::spawn([](tcp_stream& s, std::vector<std::byte>& out) -> task<> {
            for (std::size_t off = 0; off < out.size(); off += 700) {
              co_await s.write_all(
                  std::span(out).subspan(off, std::min<std::size_t>(700, out.size() - off)));
            }
          }(s, out));
          co_await s.read_exact(in);
          co_await w;
          co_return in == out;
        }(l.local_address(), k)));
      }
      for (auto& c : clients) CHECK(co_await c);
      server.cancel();
      try {
        co_await server;
      } catch (const corio::operation_cancelled&) {
      }
    }());
  }
}
