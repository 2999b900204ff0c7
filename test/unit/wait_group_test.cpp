// corio::wait_group.
// Invariants: wait() returns once the counter is zero and not before; every waiter is released;
// the group can be reused; done() below zero throws std::logic_error and changes nothing; a
// cancelled waiter leaves it consistent; threads outside the runtime can block on it; shutdown
// destroys waiters without leaving enrollments.
#include <doctest/doctest.h>

#include "../support/invariants.hpp"

#include <corio/corio.hpp>
#include <corio/sync/wait_group.hpp>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using corio::task;
using corio::test::scaled;
using namespace std::chrono_literals;

namespace {

task<> work(corio::wait_group& wg, std::atomic<long>& finished, int yields) {
  for (int i = 0; i < yields; ++i) co_await corio::yield_now();
  finished.fetch_add(1);
  wg.done();
}

task<> wait_for(corio::wait_group& wg, std::atomic<long>& finished, long expected,
                std::atomic<int>& ok) {
  co_await wg.wait();
  if (finished.load() == expected) ok.fetch_add(1);
}

}  // namespace

TEST_SUITE("wait_group") {
  TEST_CASE("wait returns once every task called done, across workers") {
    for (std::size_t workers : {1u, 2u, 4u}) {
      CAPTURE(workers);
      corio::runtime rt{{.workers = workers}};
      rt.block_on([]() -> task<> {
        const long n = scaled(2000);
        corio::wait_group wg;
        std::atomic<long> finished{0};
        std::atomic<int> ok{0};
        std::vector<corio::join_handle<void>> waiters;
        wg.add(n);
        for (int i = 0; i < 3; ++i) waiters.push_back(corio::spawn(wait_for(wg, finished, n, ok)));
        for (long i = 0; i < n; ++i)
          corio::spawn(work(wg, finished, static_cast<int>(i % 3))).detach();
        co_await wg.wait();
        CHECK(finished.load() == n);
        CHECK(wg.count() == 0);
        for (auto& h : waiters) co_await h;
        CHECK(ok.load() == 3);
      }());
    }
  }

  TEST_CASE("wait with the counter at zero returns at once; the group is reusable") {
    corio::runtime rt{{.workers = 2}};
    rt.block_on([]() -> task<> {
      corio::wait_group wg;
      co_await wg.wait();
      for (int round = 0; round < 3; ++round) {
        std::atomic<long> finished{0};
        wg.add(5);
        CHECK(wg.count() == 5);
        for (int i = 0; i < 5; ++i) corio::spawn(work(wg, finished, i)).detach();
        co_await wg.wait();
        CHECK(finished.load() == 5);
      }
      wg.add(2);
      wg.add(-2);  // a negative add that reaches zero releases like done()
      co_await wg.wait();
    }());
  }

  TEST_CASE("done below zero throws and changes nothing") {
    corio::wait_group wg;
    CHECK_THROWS_AS(wg.done(), std::logic_error);
    CHECK(wg.count() == 0);
    wg.add(1);
    CHECK_THROWS_AS(wg.add(-2), std::logic_error);
    CHECK(wg.count() == 1);
    try {
      wg.add(-5);
    } catch (const std::logic_error& e) {
      CHECK(std::string(e.what()).find("below zero") != std::string::npos);
    }
    wg.done();
    CHECK(wg.count() == 0);
  }

  TEST_CASE("a cancelled waiter leaves the group consistent") {
    for (std::size_t workers : {1u, 2u}) {
      CAPTURE(workers);
      corio::runtime rt{{.workers = workers}};
      rt.block_on([]() -> task<> {
        corio::wait_group wg;
        std::atomic<long> finished{0};
        std::atomic<int> ok{0};
        wg.add(1);
        auto a = corio::spawn(wait_for(wg, finished, 1, ok));
        auto b = corio::spawn(wait_for(wg, finished, 1, ok));
        co_await corio::sleep_for(2ms);
        a.cancel();
        CHECK_THROWS_AS(co_await a, corio::operation_cancelled);
        CHECK_THROWS_AS(co_await corio::timeout(2ms, wg.wait()), corio::timed_out);
        finished.fetch_add(1);
        wg.done();
        co_await b;
        CHECK(ok.load() == 1);
      }());
    }
  }

  TEST_CASE("plain threads call done and wait_blocking") {
    corio::runtime rt{{.workers = 2}};
    corio::wait_group started;
    corio::wait_group finished;
    started.add(3);
    finished.add(3);
    std::vector<std::thread> threads;
    for (int i = 0; i < 3; ++i) {
      threads.emplace_back([&] {
        started.done();
        finished.done();
      });
    }
    rt.block_on([](corio::wait_group& started, corio::wait_group& finished) -> task<> {
      co_await started.wait();
      co_await finished.wait();
    }(started, finished));
    for (auto& t : threads) t.join();
    corio::wait_group tasks_done;
    tasks_done.add(4);
    std::thread waiter([&tasks_done] { tasks_done.wait_blocking(); });
    rt.block_on([](corio::wait_group& wg) -> task<> {
      std::atomic<long> finished{0};
      for (int i = 0; i < 4; ++i) corio::spawn(work(wg, finished, i)).detach();
      co_await wg.wait();
    }(tasks_done));
    waiter.join();
    CHECK(tasks_done.count() == 0);
  }

  TEST_CASE("the blocking form refuses a worker thread") {
    corio::runtime rt{{.workers = 1}};
    rt.block_on([]() -> task<> {
      corio::wait_group wg;
      CHECK_THROWS_AS(wg.wait_blocking(), std::logic_error);
      co_return;
    }());
  }

  TEST_CASE("shutdown destroys tasks waiting on a group without leaving enrollments") {
    corio::wait_group wg;
    std::atomic<long> finished{0};
    std::atomic<int> ok{0};
    wg.add(1);
    {
      corio::runtime rt{{.workers = 2}};
      rt.block_on(
          [](corio::wait_group& wg, std::atomic<long>& finished, std::atomic<int>& ok) -> task<> {
            for (int i = 0; i < 50; ++i) corio::spawn(wait_for(wg, finished, 0, ok)).detach();
            co_await corio::sleep_for(5ms);
          }(wg, finished, ok));
    }
    wg.done();  // finds nobody to wake
    CHECK(ok.load() == 0);
    CHECK(wg.count() == 0);
  }
}
