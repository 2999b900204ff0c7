// corio::when_all and corio::when_any.
// Invariants: when_all returns every value in argument order once all tasks finished; its first
// exception cancels the others and is rethrown after all of them finished (their frames gone);
// when_any returns the first task to finish, with its index, after cancelling and awaiting the
// others; cancelling the caller cancels the tasks and still waits for them; shutdown destroys
// callers and tasks without leaks.
#include <doctest/doctest.h>

#include "../support/invariants.hpp"

#include <corio/corio.hpp>
#include <corio/when_all.hpp>
#include <corio/when_any.hpp>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

using corio::task;
using corio::test::counted;
using corio::test::scaled;
using namespace std::chrono_literals;

namespace {

task<int> int_after(std::chrono::milliseconds d, int v) {
  co_await corio::sleep_for(d);
  co_return v;
}

task<std::string> string_after(std::chrono::milliseconds d, std::string s) {
  co_await corio::sleep_for(d);
  co_return s;
}

task<> nothing_after(std::chrono::milliseconds d, std::atomic<int>& n) {
  co_await corio::sleep_for(d);
  n.fetch_add(1);
}

task<int> sleep_forever(counted) {
  co_await corio::sleep_for(1h);
  co_return 0;
}

task<int> fail_after(std::chrono::milliseconds d) {
  co_await corio::sleep_for(d);
  throw std::runtime_error("failed");
}

task<int> yields_then(int n, int v) {
  for (int i = 0; i < n; ++i) co_await corio::yield_now();
  co_return v;
}

// Awaits when_all of sleepers; records what it saw.
task<> caller_of_sleepers(std::atomic<int>& outcome, std::atomic<long>& live_at_end) {
  try {
    (void)co_await corio::when_all(sleep_forever(counted{}), sleep_forever(counted{}),
                                   sleep_forever(counted{}));
    outcome = 1;
  } catch (const corio::operation_cancelled&) {
    outcome = 2;
  }
  live_at_end = counted::live.load();
}

task<> any_caller_of_sleepers(std::atomic<int>& outcome, std::atomic<long>& live_at_end) {
  try {
    std::vector<task<int>> ts;
    for (int i = 0; i < 5; ++i) ts.push_back(sleep_forever(counted{}));
    (void)co_await corio::when_any(std::move(ts));
    outcome = 1;
  } catch (const corio::operation_cancelled&) {
    outcome = 2;
  }
  live_at_end = counted::live.load();
}

}  // namespace

TEST_SUITE("when_all") {
  TEST_CASE("when_all returns every value in argument order") {
    for (std::size_t workers : {1u, 2u, 4u}) {
      corio::runtime rt{{.workers = workers}};
      rt.block_on([]() -> task<> {
        std::atomic<int> n{0};
        auto [a, b, c, d] = co_await corio::when_all(int_after(3ms, 1), string_after(1ms, "two"),
                                                     nothing_after(2ms, n), yields_then(50, 4));
        CHECK(a == 1);
        CHECK(b == "two");
        static_assert(std::is_same_v<decltype(c), std::monostate>);
        CHECK(n == 1);
        CHECK(d == 4);
      }());
    }
  }

  TEST_CASE("the vector form keeps the order of its tasks") {
    for (std::size_t workers : {1u, 2u, 4u}) {
      corio::runtime rt{{.workers = workers}};
      rt.block_on([]() -> task<> {
        std::vector<task<int>> ts;
        const int n = static_cast<int>(scaled(100));
        for (int i = 0; i < n; ++i) ts.push_back(yields_then((n - i) % 7, i));
        std::vector<int> values = co_await corio::when_all(std::move(ts));
        REQUIRE(values.size() == static_cast<std::size_t>(n));
        for (int i = 0; i < n; ++i) CHECK(values[i] == i);
        std::atomic<int> done{0};
        std::vector<task<>> vs;
        for (int i = 0; i < 10; ++i)
          vs.push_back(nothing_after(std::chrono::milliseconds(i % 2), done));
        co_await corio::when_all(std::move(vs));
        CHECK(done == 10);
        CHECK((co_await corio::when_all(std::vector<task<int>>{})).empty());
      }());
    }
  }

  TEST_CASE("the first exception cancels the others and is rethrown after they finished") {
    for (std::size_t workers : {1u, 2u, 4u}) {
      counted::live = 0;
      corio::runtime rt{{.workers = workers}};
      rt.block_on([]() -> task<> {
        bool caught = false;
        try {
          (void)co_await corio::when_all(sleep_forever(counted{}), fail_after(2ms),
                                         sleep_forever(counted{}), int_after(1ms, 3));
        } catch (const std::runtime_error&) {
          caught = true;
        }
        CHECK(caught);
        CHECK(counted::live == 0);
        std::vector<task<int>> ts;
        for (int i = 0; i < 20; ++i) ts.push_back(sleep_forever(counted{}));
        ts.push_back(fail_after(1ms));
        CHECK_THROWS_AS(co_await corio::when_all(std::move(ts)), std::runtime_error);
        CHECK(counted::live == 0);
      }());
    }
  }

  TEST_CASE("cancelling the caller cancels the tasks and waits for them") {
    for (std::size_t workers : {1u, 2u, 4u}) {
      counted::live = 0;
      corio::runtime rt{{.workers = workers}};
      rt.block_on([]() -> task<> {
        for (int form = 0; form < 2; ++form) {
          std::atomic<int> outcome{0};
          std::atomic<long> live_at_end{-1};
          auto h = corio::spawn(form == 0 ? caller_of_sleepers(outcome, live_at_end)
                                          : any_caller_of_sleepers(outcome, live_at_end));
          co_await corio::sleep_for(2ms);
          h.cancel();
          co_await h;
          CHECK(outcome == 2);
          CHECK(live_at_end == 0);
        }
        // A timeout around them.
        CHECK_THROWS_AS(co_await corio::timeout(2ms, corio::when_all(sleep_forever(counted{}),
                                                                     sleep_forever(counted{}))),
                        corio::timed_out);
        CHECK(counted::live == 0);
      }());
    }
  }

  TEST_CASE("when_any returns the fastest task and cancels the others") {
    for (std::size_t workers : {1u, 2u, 4u}) {
      counted::live = 0;
      corio::runtime rt{{.workers = workers}};
      rt.block_on([]() -> task<> {
        auto r = co_await corio::when_any(sleep_forever(counted{}), string_after(1ms, "fast"),
                                          sleep_forever(counted{}));
        CHECK(r.index() == 1);
        CHECK(std::get<1>(r) == "fast");
        CHECK(counted::live == 0);

        std::vector<task<int>> ts;
        for (int i = 0; i < 10; ++i) ts.push_back(sleep_forever(counted{}));
        ts.push_back(int_after(1ms, 42));
        auto v = co_await corio::when_any(std::move(ts));
        CHECK(v.index == 10);
        CHECK(v.value == 42);
        CHECK(counted::live == 0);
      }());
    }
  }

  TEST_CASE("when_any: a winner's exception is rethrown; void tasks give monostate") {
    for (std::size_t workers : {1u, 2u}) {
      counted::live = 0;
      corio::runtime rt{{.workers = workers}};
      rt.block_on([]() -> task<> {
        CHECK_THROWS_AS(co_await corio::when_any(sleep_forever(counted{}), fail_after(1ms)),
                        std::runtime_error);
        CHECK(counted::live == 0);
        std::atomic<int> n{0};
        auto r = co_await corio::when_any(nothing_after(1h, n), nothing_after(1ms, n));
        CHECK(r.index() == 1);
        CHECK(n == 1);
        std::vector<task<>> vs;
        vs.push_back(nothing_after(1h, n));
        vs.push_back(nothing_after(0ms, n));
        auto w = co_await corio::when_any(std::move(vs));
        CHECK(w.index == 1);
        CHECK(n == 2);
        CHECK_THROWS_AS(co_await corio::when_any(std::vector<task<int>>{}), std::invalid_argument);
      }());
    }
  }

  TEST_CASE("when_any with tasks finishing together picks exactly one") {
    for (std::size_t workers : {2u, 4u}) {
      corio::runtime rt{{.workers = workers}};
      rt.block_on([]() -> task<> {
        for (long round = 0; round < scaled(200); ++round) {
          auto r =
              co_await corio::when_any(yields_then(1, 0), yields_then(1, 1), yields_then(1, 2));
          CHECK(static_cast<int>(r.index()) == std::visit([](int v) { return v; }, r));
        }
      }());
    }
  }

  TEST_CASE("shutdown destroys tasks waiting in when_all and when_any without leaks") {
    for (std::size_t workers : {1u, 2u, 4u}) {
      counted::live = 0;
      {
        corio::runtime rt{{.workers = workers}};
        rt.block_on([]() -> task<> {
          static std::atomic<int> outcome{0};
          static std::atomic<long> live{0};
          corio::spawn(caller_of_sleepers(outcome, live)).detach();
          corio::spawn(any_caller_of_sleepers(outcome, live)).detach();
          co_await corio::sleep_for(2ms);
        }());
      }
      CHECK(counted::live == 0);
    }
  }
}
