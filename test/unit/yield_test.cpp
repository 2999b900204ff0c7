// yield_now.
// Invariant: a yielding task goes behind every task that was ready before it, and yielding
// never starves timers or ring completions on the same worker.
#include <doctest/doctest.h>

#include "../support/invariants.hpp"

#include <corio/corio.hpp>
#include <corio/detail/diagnostics.hpp>

#include <atomic>
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
}
