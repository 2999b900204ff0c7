// Shutdown: the coio contract.
// Invariant: when block_on's main task finishes (normally or by exception) every other task is
// destroyed -- its destructors run -- wherever it waits, no ring operation is left in flight, and
// block_on reports main's outcome. Nothing leaks (the per-test invariants check frames and fds).
#include <doctest/doctest.h>

#include "../support/invariants.hpp"

#include <corio/corio.hpp>
#include <corio/detail/diagnostics.hpp>

#include <sys/eventfd.h>
#include <sys/resource.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

using corio::task;
using corio::test::counted;
using namespace std::chrono_literals;

namespace {

// A guard in the frame of a pending coroutine, as in coio's README.
struct guard {
  std::atomic<int>& dropped;
  ~guard() { ++dropped; }
};

task<> forever_sleep(std::atomic<int>& dropped) {
  guard g{dropped};
  co_await corio::sleep_for(24h);
}

task<> forever_ring_op(std::atomic<int>& dropped) {
  guard g{dropped};
  int res = co_await corio::detail::ring_timeout(3600LL * 1'000'000'000);
  (void)res;
  FAIL("a ring op pending at shutdown must not resume its coroutine");
}

task<> forever_yield(std::atomic<int>& dropped) {
  guard g{dropped};
  for (;;) co_await corio::yield_now();
}

task<> forever_join(std::atomic<int>& dropped) {
  guard g{dropped};
  co_await corio::spawn(forever_sleep(dropped));
}

task<> nested(std::atomic<int>& dropped, int depth) {
  guard g{dropped};
  if (depth == 0) {
    co_await corio::sleep_for(24h);
  } else {
    co_await nested(dropped, depth - 1);
  }
}

// Big enough that frame_alloc does not recycle the frame: ASan sees it freed.
task<> big_waiter(corio::mutex& m, std::atomic<int>& ran) {
  char buf[4096];
  for (char& c : buf) c = 1;
  auto g = co_await m.lock();
  ran += buf[100];
}

task<> holder(corio::mutex::guard g) {
  co_await corio::sleep_for(1h);
  g.unlock();
}

}  // namespace

TEST_SUITE("shutdown") {
  TEST_CASE("a guard in a pending coroutine's frame is destroyed when main returns") {
    std::atomic<int> dropped{0};
    int v = corio::run(
        [](std::atomic<int>& dropped) -> task<int> {
          corio::spawn(forever_sleep(dropped)).detach();
          co_await corio::sleep_for(5ms);
          co_return 1;
        }(dropped),
        {.workers = 2});
    CHECK(v == 1);
    CHECK(dropped == 1);
  }

  TEST_CASE("tasks blocked in every kind of wait are destroyed, with 1, 2 and 4 workers") {
    for (std::size_t workers : {1u, 2u, 4u}) {
      std::atomic<int> dropped{0};
      corio::run(
          [](std::atomic<int>& dropped) -> task<> {
            corio::spawn(forever_sleep(dropped)).detach();          // 1 guard
            corio::spawn(forever_ring_op(dropped)).detach();        // 1 guard, op in flight
            corio::spawn(forever_yield(dropped)).detach();          // 1 guard, always queued
            corio::spawn(forever_join(dropped)).detach();           // 2 guards (it and its child)
            corio::spawn(nested(dropped, 3)).detach();              // 4 guards in one chain
            corio::spawn_local(forever_sleep(dropped)).detach();    // 1 guard, pinned
            auto kept = corio::spawn(forever_sleep(dropped));       // 1 guard, handle held by main
            corio::spawn([](std::atomic<int>& dropped) -> task<> {  // 1 guard, blocking job running
              guard g{dropped};
              co_await corio::spawn_blocking([] { std::this_thread::sleep_for(20ms); });
              co_await corio::sleep_for(24h);
            }(dropped))
                .detach();
            co_await corio::sleep_for(10ms);
            CHECK(dropped == 0);
          }(dropped),
          {.workers = workers});
      CHECK(dropped == 12);
    }
  }

  TEST_CASE("when main throws, pending tasks are destroyed and the exception comes out") {
    std::atomic<int> dropped{0};
    corio::runtime rt{{.workers = 2}};
    CHECK_THROWS_AS(rt.block_on([](std::atomic<int>& dropped) -> task<> {
      for (int i = 0; i < 10; ++i) corio::spawn(forever_sleep(dropped)).detach();
      corio::spawn(forever_ring_op(dropped)).detach();
      co_await corio::sleep_for(5ms);
      throw std::domain_error("main failed");
    }(dropped)),
                    std::domain_error);
    CHECK(dropped == 11);
    CHECK(rt.stats().total().ops_in_flight == 0);
    CHECK(rt.stats().tasks_live == 0);
  }

  TEST_CASE("a join handle to a task destroyed by shutdown is safe to drop in any order") {
    std::atomic<int> dropped{0};
    corio::run(
        [](std::atomic<int>& dropped) -> task<> {
          // A holds B's handle; B holds C's; destruction order must not matter.
          auto c = corio::spawn(forever_sleep(dropped));
          auto b = corio::spawn([](corio::join_handle<void> c, std::atomic<int>& d) -> task<> {
            guard g{d};
            co_await c;
          }(std::move(c), dropped));
          corio::spawn([](corio::join_handle<void> b, std::atomic<int>& d) -> task<> {
            guard g{d};
            co_await corio::sleep_for(24h);
            co_await b;
          }(std::move(b), dropped))
              .detach();
          co_await corio::sleep_for(5ms);
        }(dropped),
        {.workers = 2});
    CHECK(dropped == 3);
  }

  TEST_CASE("ring operations in flight are cancelled and reaped before frames are freed") {
    corio::runtime rt{{.workers = 2}};
    std::atomic<int> dropped{0};
    rt.block_on([](std::atomic<int>& dropped) -> task<> {
      for (int i = 0; i < 200; ++i) corio::spawn(forever_ring_op(dropped)).detach();
      co_await corio::sleep_for(10ms);
    }(dropped));
    CHECK(dropped == 200);
    auto s = rt.stats();
    CHECK(s.total().ops_in_flight == 0);
    CHECK(s.total().cqes_reaped >= 200);
  }

  TEST_CASE("a pending chain 300000 frames deep is destroyed without overflowing the stack") {
    // Destruction recurses once per level; at this depth an 8 MiB stack would overflow. TSan's
    // own shadow stack cannot follow that many nested calls, so under TSan the chain is shorter.
#if defined(__SANITIZE_THREAD__)
    constexpr long depth = 20'000;
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
    constexpr long depth = 20'000;
#else
    constexpr long depth = 300'000;
#endif
#else
    constexpr long depth = 300'000;
#endif
    struct chain {
      static task<> deep(long n, counted) {
        if (n == 0) {
          co_await corio::sleep_for(24h);
        } else {
          co_await deep(n - 1, counted{});
        }
      }
    };
    counted::live = 0;
    corio::run(
        [](long depth) -> task<> {
          corio::spawn(chain::deep(depth, counted{})).detach();
          while (counted::live < depth + 1) co_await corio::sleep_for(1ms);
        }(depth),
        {.workers = 1});
    CHECK(counted::live == 0);
  }

  TEST_CASE("a short ring timeout completes normally with -ETIME") {
    int res = corio::run(
        []() -> task<int> { co_return co_await corio::detail::ring_timeout(1'000'000); }(),
        {.workers = 1});
    CHECK(res == -ETIME);
  }

  TEST_CASE("repeated shutdowns at random moments with everything pending") {
    // Main returns 0-5 ms after spawning; some tasks have not even started by then. A `counted`
    // parameter lives in the frame from its creation, so it proves every frame was destroyed.
    long rounds = corio::test::scaled(50);
    corio::runtime rt{{.workers = 2}};
    for (long r = 0; r < rounds; ++r) {
      counted::live = 0;
      auto t0 = std::chrono::steady_clock::now();
      rt.block_on([](long r) -> task<> {
        for (int i = 0; i < 50; ++i) {
          corio::spawn([](counted) -> task<> { co_await corio::sleep_for(24h); }(counted{}))
              .detach();
          corio::spawn([](counted) -> task<> {
            co_await corio::detail::ring_timeout(3600LL * 1'000'000'000);
          }(counted{}))
              .detach();
          corio::spawn([](counted) -> task<> {
            for (int k = 0; k < 1000; ++k) co_await corio::yield_now();
          }(counted{}))
              .detach();
        }
        co_await corio::sleep_for(std::chrono::microseconds((r * 97) % 5000));
      }(r));
      CHECK(counted::live == 0);
      CHECK(corio::test::ms_since(t0) < 1000);
    }
    CHECK(rt.stats().total().ops_in_flight == 0);
  }

  TEST_CASE("destructors that wake waiters during shutdown touch no destroyed frame") {
    // Shutdown destroys the m2 holder first: its guard hands m2 to a waiter and schedules it; the
    // waiter's frame is destroyed next; then the m1 holder's guard schedules the m1 waiter. The
    // queues drop those nodes instead of linking the second behind the first (freed) one.
    corio::mutex m1, m2;
    std::atomic<int> ran{0};
    for (int round = 0; round < 3; ++round) {
      corio::runtime rt{{.workers = 1}};
      rt.block_on([](corio::mutex& m1, corio::mutex& m2, std::atomic<int>& ran) -> task<> {
        auto g1 = co_await m1.lock();
        auto g2 = co_await m2.lock();
        corio::spawn(big_waiter(m1, ran)).detach();
        co_await corio::sleep_for(2ms);
        corio::spawn(holder(std::move(g1))).detach();
        corio::spawn(big_waiter(m2, ran)).detach();
        co_await corio::sleep_for(2ms);
        corio::spawn(holder(std::move(g2))).detach();
        co_await corio::sleep_for(2ms);
      }(m1, m2, ran));
      CHECK(ran.load() == 0);            // the woken waiters were destroyed, not resumed
      CHECK(m1.try_lock().owns_lock());  // and gave the mutexes back
      CHECK(m2.try_lock().owns_lock());
    }
  }

  TEST_CASE("shutdown with 10,000 reads pending on idle fds takes well under a second") {
    // Each read is armed in the kernel's poll table. One IORING_ASYNC_CANCEL_ANY rescans that
    // table after every match (47 s of system time for these 10,000 reads); the worker cancels
    // op by op, in batches, letting the kernel run the cancellations' task work in between
    // (26 ms). The fds need the soft fd limit raised to the hard one, as servers do.
    rlimit lim{};
    REQUIRE(::getrlimit(RLIMIT_NOFILE, &lim) == 0);
    rlimit saved = lim;
    lim.rlim_cur = lim.rlim_max;
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &lim) == 0);
    const int n = lim.rlim_cur >= 10200 ? 10000 : static_cast<int>(lim.rlim_cur) - 200;
    REQUIRE(n > 500);
    std::atomic<int> dropped{0};
    std::chrono::steady_clock::time_point stop;
    corio::runtime rt{{.workers = 1}};
    rt.block_on([](int n, std::atomic<int>& dropped,
                   std::chrono::steady_clock::time_point& stop) -> task<> {
      std::atomic<int> waiting{0};
      for (int i = 0; i < n; ++i) {
        int fd = ::eventfd(0, EFD_CLOEXEC);
        REQUIRE(fd >= 0);
        corio::spawn([](int fd, std::atomic<int>& waiting, std::atomic<int>& dropped) -> task<> {
          guard g{dropped};
          corio::fd_stream s(fd);
          std::array<std::byte, 8> buf;
          ++waiting;
          co_await s.read(buf);
          FAIL("nothing writes to the eventfd");
        }(fd, waiting, dropped))
            .detach();
      }
      while (waiting.load() < n) co_await corio::sleep_for(1ms);
      co_await corio::sleep_for(10ms);  // every read submitted and armed
      stop = std::chrono::steady_clock::now();
    }(n, dropped, stop));
    auto took = std::chrono::steady_clock::now() - stop;
    REQUIRE(::setrlimit(RLIMIT_NOFILE, &saved) == 0);
    CHECK(dropped == n);
    CHECK(rt.stats().total().ops_in_flight == 0);
    MESSAGE("shutdown with ", n,
            " pending reads: ", std::chrono::duration_cast<std::chrono::milliseconds>(took).count(),
            " ms");
    CHECK(took < 1s);
  }
}
