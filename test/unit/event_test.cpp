// corio::event.
// Invariants: set() releases every waiter enrolled before it, even if reset() follows at once;
// while set, waits return at once; after reset() they wait for the next set(); a cancelled waiter
// leaves no enrollment behind; threads outside the runtime can block on it; shutdown destroys
// waiters without leaving enrollments.
#include <doctest/doctest.h>

#include "../support/invariants.hpp"

#include <corio/corio.hpp>
#include <corio/sync/event.hpp>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

using corio::task;
using corio::test::scaled;
using namespace std::chrono_literals;

namespace {

task<> wait_and_count(corio::event& e, std::atomic<int>& passed) {
  co_await e.wait();
  passed.fetch_add(1);
}

}  // namespace

TEST_SUITE("event") {
  TEST_CASE("set releases every waiter, across workers") {
    for (std::size_t workers : {1u, 2u, 4u}) {
      CAPTURE(workers);
      corio::runtime rt{{.workers = workers}};
      rt.block_on([]() -> task<> {
        corio::event e;
        std::atomic<int> passed{0};
        std::vector<corio::join_handle<void>> hs;
        for (int i = 0; i < 50; ++i) hs.push_back(corio::spawn(wait_and_count(e, passed)));
        co_await corio::sleep_for(2ms);
        CHECK(passed.load() == 0);
        CHECK_FALSE(e.is_set());
        e.set();
        CHECK(e.is_set());
        for (auto& h : hs) co_await h;
        CHECK(passed.load() == 50);
      }());
    }
  }

  TEST_CASE("while set, waits return at once; after reset they wait for the next set") {
    corio::runtime rt{{.workers = 2}};
    rt.block_on([]() -> task<> {
      corio::event e(true);
      CHECK(e.is_set());
      co_await e.wait();
      co_await e.wait();
      e.reset();
      CHECK_FALSE(e.is_set());
      std::atomic<int> passed{0};
      auto h = corio::spawn(wait_and_count(e, passed));
      co_await corio::sleep_for(2ms);
      CHECK(passed.load() == 0);
      e.set();
      e.set();  // idempotent
      co_await h;
      CHECK(passed.load() == 1);
    }());
  }

  TEST_CASE("a waiter enrolled before set is released even if reset follows at once") {
    corio::runtime rt{{.workers = 2}};
    rt.block_on([]() -> task<> {
      corio::event e;
      std::atomic<int> passed{0};
      std::vector<corio::join_handle<void>> hs;
      for (int i = 0; i < 10; ++i) hs.push_back(corio::spawn(wait_and_count(e, passed)));
      co_await corio::sleep_for(2ms);
      e.set();
      e.reset();
      for (auto& h : hs) co_await h;
      CHECK(passed.load() == 10);
      CHECK_FALSE(e.is_set());
    }());
  }

  TEST_CASE("set racing new waits, across workers: nobody is left behind") {
    for (std::size_t workers : {2u, 4u}) {
      CAPTURE(workers);
      corio::runtime rt{{.workers = workers}};
      rt.block_on([]() -> task<> {
        const long rounds = scaled(1000);
        for (long r = 0; r < rounds; ++r) {
          corio::event e;
          std::atomic<int> passed{0};
          std::vector<corio::join_handle<void>> hs;
          for (int i = 0; i < 4; ++i) hs.push_back(corio::spawn(wait_and_count(e, passed)));
          if (r % 2) co_await corio::yield_now();
          e.set();
          for (auto& h : hs) co_await h;  // hangs if a wait enrolled after set was missed
          REQUIRE(passed.load() == 4);
        }
      }());
    }
  }

  TEST_CASE("a cancelled waiter leaves the event consistent") {
    for (std::size_t workers : {1u, 2u}) {
      CAPTURE(workers);
      corio::runtime rt{{.workers = workers}};
      rt.block_on([]() -> task<> {
        corio::event e;
        std::atomic<int> passed{0};
        auto a = corio::spawn(wait_and_count(e, passed));
        auto b = corio::spawn(wait_and_count(e, passed));
        co_await corio::sleep_for(2ms);
        a.cancel();
        CHECK_THROWS_AS(co_await a, corio::operation_cancelled);
        CHECK_THROWS_AS(co_await corio::timeout(2ms, e.wait()), corio::timed_out);
        e.set();
        co_await b;
        CHECK(passed.load() == 1);
        co_await corio::timeout(1s, e.wait());
      }());
    }
  }

  TEST_CASE("plain threads block on it") {
    corio::runtime rt{{.workers = 2}};
    corio::event go;
    corio::event back;
    std::atomic<int> threads_passed{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 3; ++i) {
      threads.emplace_back([&] {
        go.wait_blocking();
        threads_passed.fetch_add(1);
        back.set();
      });
    }
    rt.block_on([](corio::event& go, corio::event& back) -> task<> {
      co_await corio::sleep_for(2ms);
      go.set();
      co_await back.wait();
    }(go, back));
    for (auto& t : threads) t.join();
    CHECK(threads_passed.load() == 3);
    go.wait_blocking();  // set: returns at once
  }

  TEST_CASE("the blocking form refuses a worker thread") {
    corio::runtime rt{{.workers = 1}};
    rt.block_on([]() -> task<> {
      corio::event e(true);
      CHECK_THROWS_AS(e.wait_blocking(), std::logic_error);
      co_return;
    }());
  }

  TEST_CASE("shutdown destroys tasks waiting on an event without leaving enrollments") {
    corio::event e;
    std::atomic<int> passed{0};
    {
      corio::runtime rt{{.workers = 2}};
      rt.block_on([](corio::event& e, std::atomic<int>& passed) -> task<> {
        for (int i = 0; i < 50; ++i) corio::spawn(wait_and_count(e, passed)).detach();
        co_await corio::sleep_for(5ms);
      }(e, passed));
    }
    e.set();  // finds nobody to wake: the destroyed waiters unlinked themselves
    CHECK(passed.load() == 0);
    CHECK(e.is_set());
  }
}
