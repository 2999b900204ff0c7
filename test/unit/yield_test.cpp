// yield_now.
// Invariant: a yielding task goes behind every task that was ready before it, and yielding
// never starves timers or ring completions on the same worker. Completions are reaped in order
// and only as many as the run queue holds, so a burst of them never overflows to the global
// queue (where a busy worker would serve them late).
#include <doctest/doctest.h>

#include "../support/invariants.hpp"

#include <corio/corio.hpp>
#include <corio/detail/diagnostics.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using corio::task;
using namespace std::chrono_literals;

TEST_SUITE("yield") {
  TEST_CASE("yield_now round-robins the ready tasks of a worker (FIFO)") {
    std::string trace = corio::run(
        []() -> task<std::string> {
          std::string t;
          std::vector<corio::join_handle<void>> hs;
          for (char c : std::string("abc")) {
            hs.push_back(corio::spawn([](std::string& t, char c) -> task<> {
              for (int i = 0; i < 3; ++i) {
                t += c;
                co_await corio::yield_now();
              }
            }(t, c)));
          }
          for (auto& h : hs) co_await h;
          co_return t;
        }(),
        {.workers = 1});
    CHECK(trace == "abcabcabc");
  }

  TEST_CASE("a pinned task and a stealable task that both yield take turns on one worker") {
    // The pinned list and the run queue alternate while both hold tasks: neither starves the
    // other (served queue first, the yielding stealable task would run 100 times in a row).
    std::string trace = corio::run(
        []() -> task<std::string> {
          std::string t;
          auto yielder = [](std::string& t, char c) -> task<> {
            for (int i = 0; i < 100; ++i) {
              t += c;
              co_await corio::yield_now();
            }
          };
          auto pinned = corio::spawn_local(yielder(t, 'p'));
          auto stealable = corio::spawn(yielder(t, 's'));
          co_await pinned;
          co_await stealable;
          co_return t;
        }(),
        {.workers = 1});
    CHECK(std::count(trace.begin(), trace.end(), 'p') == 100);
    CHECK(std::count(trace.begin(), trace.end(), 's') == 100);
    std::size_t longest = 0;
    for (std::size_t i = 0, run = 0; i < trace.size(); ++i) {
      run = i > 0 && trace[i] == trace[i - 1] ? run + 1 : 1;
      longest = std::max(longest, run);
    }
    CAPTURE(trace);
    CHECK(longest <= 2);
  }

  TEST_CASE("yield_now outside a runtime worker throws std::logic_error") {
    // Drive the coroutine by hand on a plain thread: the awaiter must refuse, not crash.
    auto t = []() -> task<bool> {
      try {
        co_await corio::yield_now();
      } catch (const std::logic_error&) {
        co_return true;
      }
      co_return false;
    }();
    auto h = t.release();
    h.resume();
    REQUIRE(h.done());
    CHECK(h.promise().result());
    h.destroy();
  }

  TEST_CASE("a task that only yields does not starve a ring completion on its worker") {
    corio::run(
        []() -> task<> {
          std::atomic<bool> stop{false};
          auto spinner = corio::spawn([](std::atomic<bool>& stop) -> task<long> {
            long n = 0;
            while (!stop.load()) {
              ++n;
              co_await corio::yield_now();
            }
            co_return n;
          }(stop));
          for (int i = 0; i < 100; ++i) {
            auto t = co_await corio::detail::nop();
            CHECK(t.res == 0);
          }
          stop = true;
          CHECK(co_await spinner > 0);
        }(),
        {.workers = 1});
  }

  TEST_CASE("a task that only yields does not starve the global queue on its worker") {
    // One worker, busy forever with a yielding task in its local queue; a foreign thread spawns
    // into the global queue, which the worker must still look at (every 31 resumptions).
    corio::runtime rt{{.workers = 1}};
    std::atomic<int> ran{0};
    rt.block_on([](corio::runtime& rt, std::atomic<int>& ran) -> task<> {
      std::atomic<bool> stop{false};
      auto spinner = corio::spawn([](std::atomic<bool>& stop) -> task<> {
        while (!stop.load()) co_await corio::yield_now();
      }(stop));
      std::thread foreign([&] {
        for (int i = 0; i < 100; ++i) {
          rt.spawn([](std::atomic<int>& ran) -> task<> {
              ++ran;
              co_return;
            }(ran))
              .detach();
        }
      });
      foreign.join();
      while (ran.load() < 100) co_await corio::yield_now();
      stop = true;
      co_await spinner;
    }(rt, ran));
    CHECK(ran == 100);
  }

  TEST_CASE("completions arriving at a nearly full run queue are not pushed to the global queue") {
    // 200 tasks yield in a loop, so the worker's run queue (256 slots) stays nearly full; then
    // the data of 100 pipe readers arrives. Reaping all their completions at once would overflow
    // the queue; the worker must leave what does not fit in the CQ for its next poll instead.
    static constexpr int readers = 100;
    static constexpr int yielders = 200;
    corio::runtime rt{{.workers = 1}};
    std::uint64_t overflows = rt.block_on([](corio::runtime& rt) -> task<std::uint64_t> {
      std::vector<int> write_ends;
      std::vector<corio::join_handle<std::size_t>> hs;
      std::atomic<int> waiting{0};
      for (int i = 0; i < readers; ++i) {
        int p[2];
        REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
        write_ends.push_back(p[1]);
        hs.push_back(corio::spawn([](int fd, std::atomic<int>& waiting) -> task<std::size_t> {
          corio::fd_stream r(fd);
          std::array<std::byte, 8> buf;
          ++waiting;
          co_return co_await r.read(buf);
        }(p[0], waiting)));
        // One at a time, so that spawning does not overflow the queue by itself.
        while (waiting.load() <= i) co_await corio::yield_now();
      }
      for (int i = 0; i < 3; ++i) co_await corio::yield_now();  // every read is submitted
      std::atomic<bool> stop{false};
      std::vector<corio::join_handle<void>> spinners;
      for (int i = 0; i < yielders; ++i) {
        spinners.push_back(corio::spawn([](std::atomic<bool>& stop) -> task<> {
          while (!stop.load()) co_await corio::yield_now();
        }(stop)));
      }
      std::uint64_t before = rt.stats().total().overflows;
      for (int fd : write_ends) REQUIRE(::write(fd, "x", 1) == 1);
      std::size_t bytes = 0;
      for (auto& h : hs) bytes += co_await h;
      std::uint64_t after = rt.stats().total().overflows;
      stop = true;
      for (auto& h : spinners) co_await h;
      for (int fd : write_ends) ::close(fd);
      CHECK(bytes == readers);
      co_return after - before;
    }(rt));
    CHECK(overflows == 0);
  }

  TEST_CASE(
      "while one worker runs a task that never suspends for a second, tasks and timers on "
      "the other keep their timing (T25)") {
    // The busy task is pinned to the main task's worker (spawn_local). Short tasks arrive from a
    // plain thread (runtime::spawn: the global queue), so the other, idle worker takes them; each
    // sleeps 10 ms twenty times and records how late every wake-up is.
    corio::runtime rt{{.workers = 2}};
    std::vector<long> late_us;
    std::mutex late_mutex;
    std::atomic<bool> busy_started{false}, stall_seen{false};
    rt.block_on([](corio::runtime& rt, std::vector<long>& late_us, std::mutex& late_mutex,
                   std::atomic<bool>& busy_started, std::atomic<bool>& stall_seen) -> task<> {
      co_await corio::sleep_for(1ms);  // a first poll: the poll-gap measure starts from it
      auto busy = corio::spawn_local([](std::atomic<bool>& started) -> task<> {
        started = true;
        auto until = std::chrono::steady_clock::now() + 1s;
        while (std::chrono::steady_clock::now() < until) {
        }
        co_return;
      }(busy_started));
      std::thread feeder([&rt, &late_us, &late_mutex, &busy_started] {
        while (!busy_started) std::this_thread::yield();
        std::vector<corio::join_handle<void>> shorts;
        for (int i = 0; i < 20; ++i) {
          shorts.push_back(rt.spawn([](std::vector<long>& late_us, std::mutex& m) -> task<> {
            for (int k = 0; k < 20; ++k) {
              auto due = std::chrono::steady_clock::now() + 10ms;
              co_await corio::sleep_until(due);
              long us = std::chrono::duration_cast<std::chrono::microseconds>(
                            std::chrono::steady_clock::now() - due)
                            .count();
              std::lock_guard lock(m);
              late_us.push_back(us);
            }
          }(late_us, late_mutex)));
        }
        for (auto& h : shorts) h.detach();
      });
      // Meanwhile, stats() from a plain thread names the stall while it lasts.
      std::thread watcher([&rt, &stall_seen, id = busy.id()] {
        for (int i = 0; i < 200 && !stall_seen; ++i) {
          for (const corio::worker_stats& w : rt.stats().workers) {
            if (w.running_task == id && w.poll_age_ns > 300'000'000u) stall_seen = true;
          }
          std::this_thread::sleep_for(10ms);
        }
      });
      co_await busy;
      watcher.join();
      feeder.join();
      // The shorts run 200 ms; the busy second is over by now, but let any straggler finish.
      for (int i = 0; i < 200; ++i) {
        {
          std::lock_guard lock(late_mutex);
          if (late_us.size() == 400) break;
        }
        co_await corio::sleep_for(5ms);
      }
    }(rt, late_us, late_mutex, busy_started, stall_seen));
    CHECK_MESSAGE(stall_seen, "stats() never showed the busy task's id with an old poll");
    REQUIRE(late_us.size() == 400);
    std::sort(late_us.begin(), late_us.end());
    long p99 = late_us[late_us.size() * 99 / 100];
    MESSAGE("wake-up lateness beside a busy worker: p50 " << late_us[late_us.size() / 2]
                                                          << " us, p99 " << p99 << " us");
    CHECK(p99 < (corio::test::faults_injected() ? 200'000 : 50'000));
    // The busy worker shows as a poll gap of about a second (the stall measure).
    CHECK(rt.stats().total().longest_poll_gap_ns > 500'000'000u);
  }
}
