// Pooled-read stress: 4 workers, 48 loopback connections read with read_some_pooled by tasks
// that migrate, time out, get cancelled and drop their streams mid-transfer, with a small pool
// (32 buffers of 2 KiB) that keeps running dry.
// Invariants: on every connection that is read to its end, the bytes arrive whole and in order;
// interrupted reads lose nothing (a read after a timeout or cancellation continues the stream);
// streams dropped mid-receive give back every buffer (the shared main checks that no read pool
// is left after the test); nothing hangs.
#include <doctest/doctest.h>

#include "../support/invariants.hpp"
#include "../support/net.hpp"

#include <corio/corio.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <random>
#include <vector>

using corio::pooled_buffer;
using corio::task;
using namespace corio::net;
using namespace std::chrono_literals;
using corio::test::pattern;

namespace {

struct tally {
  std::atomic<long> whole{0};       // connections read to the end, bytes intact
  std::atomic<long> dropped{0};     // connections dropped mid-stream on purpose
  std::atomic<long> timeouts{0};    // reads that timed out and were retried
  std::atomic<long> cancels{0};     // reads whose task was cancelled, continued by another
  std::atomic<long> mismatched{0};  // must stay 0
};

task<> writer(tcp_stream s, std::vector<std::byte> data, unsigned seed) {
  std::minstd_rand rng(seed);
  try {
    for (std::size_t off = 0; off < data.size();) {
      std::size_t n = std::min<std::size_t>(1 + rng() % 9000, data.size() - off);
      co_await s.write_all(std::span(data).subspan(off, n));
      off += n;
      if (rng() % 8 == 0) co_await corio::sleep_for(std::chrono::microseconds(rng() % 2000));
    }
    co_await s.close();
  } catch (const std::system_error&) {
    // The reader dropped the connection on purpose: a reset or EPIPE ends the writer.
  }
}

// One read, in a task of its own that the caller may cancel.
task<pooled_buffer> one_read(tcp_stream& s) {
  co_return co_await s.read_some_pooled();
}

task<> reader(tcp_stream s, std::vector<std::byte> want, unsigned seed, tally& t) {
  std::minstd_rand rng(seed);
  // A third of the connections are dropped after a random prefix.
  std::size_t stop_at = rng() % 3 == 0 ? rng() % want.size() : want.size() + 1;
  std::vector<std::byte> got;
  for (;;) {
    if (got.size() >= stop_at) {
      ++t.dropped;
      co_return;  // `s` goes away with bytes queued and its receive armed
    }
    pooled_buffer b;
    unsigned pick = rng() % 10;
    if (pick == 0) {
      try {
        b = co_await corio::timeout(std::chrono::microseconds(50 + rng() % 500),
                                    s.read_some_pooled());
      } catch (const corio::timed_out&) {
        ++t.timeouts;
        continue;
      }
    } else if (pick == 1) {
      auto h = corio::spawn(one_read(s));
      co_await corio::yield_now();
      h.cancel();
      try {
        b = co_await h;
      } catch (const corio::operation_cancelled&) {
        ++t.cancels;
        continue;
      }
    } else {
      b = co_await s.read_some_pooled();
    }
    if (b.empty()) break;
    got.insert(got.end(), b.data(), b.data() + b.size());
    if (rng() % 4 == 0) co_await corio::yield_now();        // another worker may take the task
    if (rng() % 16 == 0) co_await corio::sleep_for(200us);  // hold the buffer a while
  }
  if (got == want) {
    ++t.whole;
  } else {
    ++t.mismatched;
  }
}

}  // namespace

TEST_SUITE("pooled_read_stress") {
  TEST_CASE("migrating, timing out, cancelled and dropped pooled readers over a dry pool") {
    long rounds = corio::test::scaled(3);
    for (long round = 0; round < rounds; ++round) {
      CAPTURE(round);
      tally t;
      corio::runtime rt{{.workers = 4, .read_pool_buffers = 32, .read_pool_buffer_size = 2048}};
      rt.block_on([](tally& t, unsigned base) -> task<> {
        auto l = tcp_listener::bind("127.0.0.1:0");
        std::vector<corio::join_handle<void>> hs;
        for (unsigned k = 0; k < 48; ++k) {
          auto c = co_await tcp_stream::connect(l.local_address());
          auto a = co_await l.accept();
          std::vector<std::byte> data = pattern(64 * 1024 + k * 1000, base + k);
          hs.push_back(corio::spawn(writer(std::move(c), data, base + k)));
          hs.push_back(corio::spawn(reader(std::move(a.stream), std::move(data), base + k, t)));
        }
        for (auto& h : hs) co_await h;
      }(t, static_cast<unsigned>(round * 100)));
      CHECK(t.mismatched.load() == 0);
      CHECK(t.whole.load() + t.dropped.load() == 48);
      CHECK(t.whole.load() > 0);
      MESSAGE("whole ", t.whole.load(), " dropped ", t.dropped.load(), " timeouts ",
              t.timeouts.load(), " cancels ", t.cancels.load(), " dry reads ",
              rt.stats().total().pool_dry_reads);
    }
  }
}
