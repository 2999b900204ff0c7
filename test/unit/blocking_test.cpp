// spawn_blocking and its elastic pool.
// Invariant: the function runs on a pool thread (never on a worker), its value or exception comes
// back to the awaiting task, and the pool never exceeds its bound.
#include <doctest/doctest.h>

#include "../support/invariants.hpp"

#include <corio/corio.hpp>
#include <corio/detail/diagnostics.hpp>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using corio::task;
using namespace std::chrono_literals;

TEST_SUITE("blocking") {
  TEST_CASE("spawn_blocking returns values, void, references and move-only results") {
    corio::run(
        []() -> task<> {
          int v = co_await corio::spawn_blocking([] { return 41 + 1; });
          CHECK(v == 42);
          bool ran = false;
          co_await corio::spawn_blocking([&] { ran = true; });
          CHECK(ran);
          static int target = 0;
          int& r = co_await corio::spawn_blocking([]() -> int& { return target; });
          CHECK(&r == &target);
          auto p =
              co_await corio::spawn_blocking([] { return std::make_unique<std::string>("x"); });
          CHECK(*p == "x");
        }(),
        {.workers = 2});
  }

  TEST_CASE("the function runs off the workers and the task resumes on a worker") {
    corio::run(
        []() -> task<> {
          long worker_tid = corio::detail::current_tid();
          int index_inside = 0;
          long tid_inside = co_await corio::spawn_blocking([&] {
            index_inside = corio::detail::current_worker_index();
            return corio::detail::current_tid();
          });
          CHECK(tid_inside != worker_tid);
          CHECK(index_inside == -1);
          CHECK(corio::detail::current_worker_index() >= 0);
        }(),
        {.workers = 2});
  }

  TEST_CASE("an exception from the function is rethrown in the task") {
    bool caught = corio::run(
        []() -> task<bool> {
          try {
            co_await corio::spawn_blocking([]() -> int { throw std::invalid_argument("bad"); });
          } catch (const std::invalid_argument& e) {
            co_return std::string(e.what()) == "bad";
          }
          co_return false;
        }(),
        {.workers = 1});
    CHECK(caught);
  }

  TEST_CASE("blocking jobs run in parallel up to the bound, and no further") {
    corio::runtime rt{{.workers = 2, .max_blocking_threads = 3}};
    std::atomic<int> running{0}, peak{0};
    rt.block_on([](std::atomic<int>& running, std::atomic<int>& peak) -> task<> {
      std::vector<corio::join_handle<void>> hs;
      for (int i = 0; i < 12; ++i) {
        hs.push_back(corio::spawn([](std::atomic<int>& running, std::atomic<int>& peak) -> task<> {
          co_await corio::spawn_blocking([&] {
            int now = ++running;
            int p = peak.load();
            while (now > p && !peak.compare_exchange_weak(p, now)) {
            }
            std::this_thread::sleep_for(20ms);
            --running;
          });
        }(running, peak)));
      }
      for (auto& h : hs) co_await h;
    }(running, peak));
    CHECK(peak == 3);
    CHECK(rt.stats().blocking_jobs == 12);
    CHECK(rt.stats().blocking_threads <= 3);
  }

  TEST_CASE("idle pool threads exit after the keep-alive") {
    corio::runtime rt{{.workers = 1, .blocking_keep_alive = 20ms}};
    rt.block_on([]() -> task<> { co_await corio::spawn_blocking([] {}); }());
    auto t0 = std::chrono::steady_clock::now();
    while (rt.stats().blocking_threads != 0 && std::chrono::steady_clock::now() - t0 < 5s) {
      std::this_thread::sleep_for(5ms);
    }
    CHECK(rt.stats().blocking_threads == 0);
  }

  TEST_CASE("spawn works from inside a blocking function") {
    int v = corio::run(
        []() -> task<int> {
          auto h = co_await corio::spawn_blocking(
              [] { return corio::spawn([]() -> task<int> { co_return 9; }()); });
          co_return co_await h;
        }(),
        {.workers = 2});
    CHECK(v == 9);
  }

  TEST_CASE("shutdown waits for a running job and drops queued ones") {
    corio::runtime rt{{.workers = 1, .max_blocking_threads = 1}};
    std::atomic<int> started{0}, finished{0};
    rt.block_on([](std::atomic<int>& started, std::atomic<int>& finished) -> task<> {
      for (int i = 0; i < 3; ++i) {
        corio::spawn([](std::atomic<int>& started, std::atomic<int>& finished) -> task<> {
          co_await corio::spawn_blocking([&] {
            ++started;
            std::this_thread::sleep_for(50ms);
            ++finished;
          });
        }(started, finished))
            .detach();
      }
      while (started.load() == 0) co_await corio::sleep_for(1ms);
    }(started, finished));
    // The one running job finished before block_on returned; the two queued never started.
    CHECK(started == 1);
    CHECK(finished == 1);
  }
}
