// runtime, runtime_options, block_on, run, stats.
// Invariant: block_on returns main's value or rethrows its exception only after every other task
// was finished or destroyed; a runtime can run many sessions; bad options are rejected clearly.
#include <doctest/doctest.h>

#include "../support/invariants.hpp"

#include <corio/corio.hpp>
#include <corio/detail/diagnostics.hpp>

#include <fmt/format.h>

#include <sys/resource.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <vector>

using corio::task;
using namespace std::chrono_literals;

namespace {

task<int> child(int x) {
  co_await corio::yield_now();
  co_return x * 2;
}

task<int> main_task() {
  auto h = corio::spawn(child(21));
  co_await corio::sleep_for(std::chrono::milliseconds(10));
  co_return co_await h;
}

}  // namespace

TEST_SUITE("runtime") {
  TEST_CASE("block_on runs the issue's example and returns 42 with 1, 2 and 4 workers") {
    for (std::size_t w : {1u, 2u, 4u}) {
      corio::runtime rt{corio::runtime_options{.workers = w}};
      CHECK(rt.worker_count() == w);
      CHECK(rt.block_on(main_task()) == 42);
    }
  }

  TEST_CASE("workers = 0 means one per CPU") {
    corio::runtime rt;
    CHECK(rt.worker_count() >= 1);
    CHECK(rt.worker_count() == rt.options().workers);
  }

  TEST_CASE("corio::run is block_on on a fresh runtime") {
    CHECK(corio::run(main_task(), {.workers = 2}) == 42);
  }

  TEST_CASE("bad options are rejected with std::invalid_argument") {
    CHECK_THROWS_AS(corio::runtime(corio::runtime_options{.workers = 100000}),
                    std::invalid_argument);
    CHECK_THROWS_AS(corio::runtime(corio::runtime_options{.workers = 1, .ring_entries = 0}),
                    std::invalid_argument);
    CHECK_THROWS_AS(corio::runtime(corio::runtime_options{.workers = 1, .ring_entries = 65536}),
                    std::invalid_argument);
    CHECK_THROWS_AS(corio::runtime(corio::runtime_options{.workers = 1, .max_blocking_threads = 0}),
                    std::invalid_argument);
  }

  TEST_CASE("block_on rethrows main's exception with its type") {
    corio::runtime rt{{.workers = 2}};
    CHECK_THROWS_AS(rt.block_on([]() -> task<int> {
      co_await corio::yield_now();
      throw std::out_of_range("main failed");
    }()),
                    std::out_of_range);
    // The runtime is usable again afterwards.
    CHECK(rt.block_on(main_task()) == 42);
  }

  TEST_CASE("block_on with an empty task throws std::logic_error") {
    corio::runtime rt{{.workers = 1}};
    CHECK_THROWS_AS(rt.block_on(task<int>{}), std::logic_error);
  }

  TEST_CASE("a nested block_on from a task throws std::logic_error") {
    corio::runtime outer{{.workers = 2}};
    bool threw = outer.block_on([]() -> task<bool> {
      corio::runtime inner{{.workers = 1}};
      try {
        inner.block_on(child(1));
      } catch (const std::logic_error&) {
        co_return true;
      }
      co_return false;
    }());
    CHECK(threw);
  }

  TEST_CASE("a runtime runs many sessions and its counters accumulate") {
    corio::runtime rt{{.workers = 2}};
    for (int i = 0; i < 20; ++i) CHECK(rt.block_on(child(i)) == 2 * i);
    corio::runtime_stats s = rt.stats();
    CHECK(s.workers.size() == 2);
    CHECK(s.tasks_spawned == 20);
    CHECK(s.tasks_live == 0);
    CHECK(s.total().tasks_polled >= 40);  // each child: start + after yield
  }

  TEST_CASE("runtime::spawn before block_on runs the task in the next session") {
    corio::runtime rt{{.workers = 2}};
    std::atomic<int> ran{0};
    auto h = rt.spawn([](std::atomic<int>& ran) -> task<int> {
      ++ran;
      co_return 7;
    }(ran));
    CHECK(ran == 0);
    int v = rt.block_on(
        [](corio::join_handle<int> h) -> task<int> { co_return co_await h; }(std::move(h)));
    CHECK(v == 7);
    CHECK(ran == 1);
  }

  TEST_CASE("runtime::spawn from a foreign thread while block_on runs") {
    corio::runtime rt{{.workers = 2}};
    std::atomic<int> sum{0};
    int done = rt.block_on([](corio::runtime& rt, std::atomic<int>& sum) -> task<int> {
      std::thread t([&] {
        for (int i = 1; i <= 100; ++i) {
          rt.spawn([](std::atomic<int>& sum, int i) -> task<> {
              sum += i;
              co_return;
            }(sum, i))
              .detach();
        }
      });
      while (sum.load() != 5050) co_await corio::sleep_for(1ms);
      t.join();
      co_return 1;
    }(rt, sum));
    CHECK(done == 1);
    CHECK(sum == 5050);
  }

  TEST_CASE("a task spawned after main finished never runs and is destroyed") {
    corio::runtime rt{{.workers = 2}};
    static std::atomic<int> ran{0};
    ran = 0;
    corio::test::counted::live = 0;
    rt.block_on([]() -> task<> {
      struct spawner {
        ~spawner() {
          // Runs during shutdown, when this frame is destroyed.
          corio::spawn([](corio::test::counted) -> task<> {
            ++ran;
            co_return;
          }(corio::test::counted{}))
              .detach();
        }
      };
      corio::spawn([]() -> task<> {
        spawner s;
        co_await corio::sleep_for(1h);
      }())
          .detach();
      co_await corio::sleep_for(2ms);
    }());
    CHECK(ran == 0);
    CHECK(corio::test::counted::live == 0);
  }

  TEST_CASE("stats print as one line with fmt and operator<<") {
    corio::runtime rt{{.workers = 2}};
    rt.block_on(main_task());
    std::string a = fmt::format("{}", rt.stats());
    std::ostringstream os;
    os << rt.stats();
    CHECK(a.find("workers=2") != std::string::npos);
    CHECK(a.find("spawned=2") != std::string::npos);
    CHECK(os.str().find("depths=[") != std::string::npos);
    CHECK(a.find(" longest_poll_gap_ns=") != std::string::npos);
    CHECK(a.find('\n') == std::string::npos);
  }

  TEST_CASE("worker_stats print as one line; total() sums the counters and takes the longest gap") {
    corio::runtime_stats s;
    s.workers.resize(2);
    s.workers[0].tasks_polled = 3;
    s.workers[0].longest_poll_gap_ns = 5'000;
    s.workers[1].tasks_polled = 4;
    s.workers[1].queue_depth = 2;
    s.workers[1].longest_poll_gap_ns = 7'000;
    corio::worker_stats t = s.total();
    CHECK(t.tasks_polled == 7);
    CHECK(t.queue_depth == 2);
    CHECK(t.longest_poll_gap_ns == 7'000);
    std::string a = fmt::format("{}", s.workers[1]);
    std::ostringstream os;
    os << s.workers[1];
    CHECK(a == os.str());
    CHECK(a == corio::to_string(s.workers[1]));
    CHECK(a.rfind("polled=4 ", 0) == 0);
    CHECK(a.find(" depth=2 ") != std::string::npos);
    CHECK(a.find(" longest_poll_gap_ns=7000") != std::string::npos);
    CHECK(a.find('\n') == std::string::npos);
    CHECK(fmt::format("{}", s).find(" longest_poll_gap_ns=7000 ") != std::string::npos);
  }

  TEST_CASE("a task that blocks its worker for 20 ms shows as a poll gap of at least 15 ms") {
    corio::runtime rt{{.workers = 1}};
    rt.block_on([]() -> task<> {
      co_await corio::sleep_for(1ms);     // the worker parks, then polls to fire the timer
      std::this_thread::sleep_for(20ms);  // blocks the worker without suspending
      co_await corio::sleep_for(1ms);     // the worker polls again only now
    }());
    corio::runtime_stats s = rt.stats();
    CHECK(s.workers[0].longest_poll_gap_ns >= 15'000'000);
    CHECK(s.total().longest_poll_gap_ns == s.workers[0].longest_poll_gap_ns);
    std::string gap = fmt::format(" longest_poll_gap_ns={} ", s.workers[0].longest_poll_gap_ns);
    CHECK(fmt::format("{}", s).find(gap) != std::string::npos);
  }

  TEST_CASE("a task that blocks its worker until the session ends shows as a poll gap too") {
    corio::runtime rt{{.workers = 1}};
    rt.block_on([]() -> task<> {
      co_await corio::sleep_for(1ms);     // the worker parks, wakes, polls
      std::this_thread::sleep_for(20ms);  // then main blocks it, and returns: no poll after
    }());
    CHECK(rt.stats().workers[0].longest_poll_gap_ns >= 15'000'000);
  }

  TEST_CASE("parking and the time between sessions are no poll gap") {
    corio::runtime rt{{.workers = 1}};
    auto sleepy = []() -> task<> {
      for (int i = 0; i < 3; ++i) co_await corio::sleep_for(40ms);  // the worker parks
    };
    rt.block_on(sleepy());
    std::this_thread::sleep_for(60ms);  // no session: the worker does not run
    rt.block_on(sleepy());
    corio::runtime_stats s = rt.stats();
    CHECK(s.workers[0].parks >= 6);
    CHECK(s.workers[0].longest_poll_gap_ns < 30'000'000);
  }

  TEST_CASE("two runtimes run at the same time on two threads") {
    std::atomic<int> ok{0};
    auto one = [&] {
      corio::runtime rt{{.workers = 2}};
      for (int i = 0; i < 10; ++i) ok += rt.block_on(main_task()) == 42;
    };
    std::thread a(one), b(one);
    a.join();
    b.join();
    CHECK(ok == 20);
  }

  TEST_CASE("a task that joins a task of another runtime resumes on its own runtime's worker") {
    // Runtime `other` runs a session on a thread of its own; tasks of `home` (one worker) spawn
    // tasks on it with runtime::spawn and join them. Each join must resume on home's worker,
    // not on the thread where the joined task finished.
    corio::runtime other{{.workers = 1}};
    std::atomic<bool> done{false};
    std::thread other_thread([&] {
      other.block_on([](std::atomic<bool>& done) -> task<> {
        while (!done.load()) co_await corio::sleep_for(1ms);
      }(done));
    });
    corio::runtime home{{.workers = 1}};
    int moved = home.block_on([](corio::runtime& other) -> task<int> {
      int moved = 0;
      const auto home_thread = std::this_thread::get_id();  // the only worker's
      for (int i = 0; i < 20; ++i) {
        auto h = other.spawn([](int i) -> task<int> {
          co_await corio::sleep_for(std::chrono::microseconds(100 * (i % 3)));
          co_return i;
        }(i));
        CHECK(co_await h == i);
        if (std::this_thread::get_id() != home_thread) ++moved;
      }
      co_return moved;
    }(other));
    done = true;
    other_thread.join();
    CHECK(moved == 0);
  }

  TEST_CASE("a worker that cannot create its ring makes block_on throw, and nothing leaks") {
    // Room for the constructor's probe rings but not for 8 workers' rings and eventfds.
    rlimit old{};
    REQUIRE(getrlimit(RLIMIT_NOFILE, &old) == 0);
    corio::test::counted::live = 0;
    {
      corio::runtime rt{{.workers = 8}};
      rlimit low = old;
      low.rlim_cur = static_cast<rlim_t>(corio::test::open_fd_count() + 6);
      REQUIRE(setrlimit(RLIMIT_NOFILE, &low) == 0);
      std::string what;
      int code = 0;
      try {
        rt.block_on([](corio::test::counted) -> task<int> { co_return 1; }(corio::test::counted{}));
      } catch (const std::system_error& e) {
        what = e.what();
        code = e.code().value();
      }
      REQUIRE(setrlimit(RLIMIT_NOFILE, &old) == 0);
      CHECK(code == EMFILE);
      CHECK(what.find("RLIMIT_NOFILE") != std::string::npos);
      CHECK(corio::test::counted::live == 0);  // the main task was destroyed, never run
      // With the limit restored the same runtime works.
      CHECK(rt.block_on(main_task()) == 42);
    }
  }

  TEST_CASE("SQPOLL rings work when asked for") {
    corio::runtime rt{{.workers = 1, .sqpoll = true}};
    int res = rt.block_on([]() -> task<int> {
      auto t = co_await corio::detail::nop();
      co_return t.res;
    }());
    CHECK(res == 0);
  }

  TEST_CASE("a completion queue far smaller than the completions at once loses none (T08)") {
    // ring_entries = 2: an SQ of 2 and a CQ of 8. Thousands of 5 ms ring timeouts, submitted as
    // fast as the SQ allows, expire within a few milliseconds of each other: the kernel posts far
    // more CQEs per enter than the CQ holds, the rest wait in its overflow list (corio requires
    // IORING_FEAT_NODROP), and every one must be reaped and resume its task exactly once.
    for (std::size_t workers : {1u, 2u}) {
      CAPTURE(workers);
      long n = corio::test::scaled(2000);
      corio::runtime rt{{.workers = workers, .ring_entries = 2}};
      long expired = rt.block_on([](long n) -> task<long> {
        std::atomic<long> expired{0};
        std::vector<corio::join_handle<void>> hs;
        hs.reserve(static_cast<std::size_t>(n));
        for (long i = 0; i < n; ++i) {
          hs.push_back(corio::spawn([](std::atomic<long>& e) -> task<> {
            int r = co_await corio::detail::ring_timeout(5'000'000);
            if (r == -ETIME) e.fetch_add(1);
          }(expired)));
        }
        for (auto& h : hs) co_await h;
        co_return expired.load();
      }(n));
      CHECK(expired == n);
      CHECK(rt.stats().total().ops_in_flight == 0);
    }
  }
}
