// corio::scoped.
// Invariants: scoped returns only after every child finished and its frame (destructors
// included) is gone; the first failure (child or body) cancels everything else and is rethrown;
// the operation_cancelled exceptions caused by the scope's own cancellation are not failures;
// cancelling the parent (join_handle::cancel, corio::timeout) cancels the children, still waits
// for all of them, and surfaces as operation_cancelled / timed_out; shutdown destroys scopes
// waiting for children without leaks.
#include <doctest/doctest.h>

#include "../support/invariants.hpp"

#include <corio/corio.hpp>
#include <corio/scope.hpp>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

using corio::task;
using corio::test::counted;
using corio::test::scaled;
using namespace std::chrono_literals;

namespace {

// Counts live instances, and spins in its destructor: if scoped stopped waiting for a child
// before the child's frame was gone, the parent would see it alive.
struct slow_guard {
  static inline std::atomic<long> live{0};
  slow_guard() noexcept { ++live; }
  slow_guard(const slow_guard&) noexcept { ++live; }
  slow_guard(slow_guard&&) noexcept { ++live; }
  ~slow_guard() {
    corio::test::spin_for(std::chrono::microseconds(500));
    --live;
  }
};

task<> add_after_yields(int i, std::atomic<int>& sum, counted) {
  for (int k = 0; k < i % 4; ++k) co_await corio::yield_now();
  if (i % 3 == 0) co_await corio::sleep_for(std::chrono::microseconds(100));
  sum.fetch_add(i);
}

task<> sleep_forever(slow_guard) {
  co_await corio::sleep_for(1h);
}

task<> fail_after(std::chrono::milliseconds d, std::string what) {
  co_await corio::sleep_for(d);
  throw std::runtime_error(what);
}

task<int> value_after(std::chrono::milliseconds d, int v) {
  co_await corio::sleep_for(d);
  co_return v;
}

// Runs a scope of `n` children sleeping for an hour; records live guards when scoped ended.
task<> parent_of_sleepers(int n, std::atomic<long>& live_at_end, std::atomic<int>& outcome) {
  try {
    co_await corio::scoped([n](corio::scope& s) -> task<> {
      for (int i = 0; i < n; ++i) s.spawn(sleep_forever(slow_guard{}));
      co_await corio::sleep_for(1h);
    });
    outcome = 1;
  } catch (const corio::operation_cancelled&) {
    outcome = 2;
  } catch (...) {
    outcome = 3;
  }
  live_at_end = slow_guard::live.load();
}

task<> spawn_tree(corio::scope& s, int depth, std::atomic<int>& leaves) {
  if (depth == 0) {
    co_await corio::yield_now();
    leaves.fetch_add(1);
    co_return;
  }
  s.spawn(spawn_tree(s, depth - 1, leaves));
  s.spawn(spawn_tree(s, depth - 1, leaves));
}

}  // namespace

TEST_SUITE("scope") {
  TEST_CASE("scoped waits for 100 children that borrow a parent local") {
    for (std::size_t workers : {1u, 2u, 4u}) {
      counted::live = 0;
      corio::runtime rt{{.workers = workers}};
      rt.block_on([]() -> task<> {
        for (long round = 0; round < scaled(5); ++round) {
          std::atomic<int> sum{0};
          co_await corio::scoped([&](corio::scope& s) -> task<> {
            for (int i = 0; i < 100; ++i) s.spawn(add_after_yields(i, sum, counted{}));
            co_return;
          });
          CHECK(sum.load() == 99 * 100 / 2);
          CHECK(counted::live == 0);  // every child's frame is gone
        }
      }());
    }
  }

  TEST_CASE("scoped returns the body's value after the children finished") {
    for (std::size_t workers : {1u, 4u}) {
      int v = corio::run(
          []() -> task<int> {
            std::atomic<int> sum{0};
            int r = co_await corio::scoped([&](corio::scope& s) -> task<int> {
              for (int i = 0; i < 10; ++i) s.spawn(add_after_yields(i, sum, counted{}));
              co_return 7;
            });
            CHECK(sum.load() == 45);
            co_return r;
          }(),
          {.workers = workers});
      CHECK(v == 7);
    }
  }

  TEST_CASE("a throwing child cancels its siblings and the body; the first exception propagates") {
    for (std::size_t workers : {1u, 2u, 4u}) {
      slow_guard::live = 0;
      corio::runtime rt{{.workers = workers}};
      rt.block_on([]() -> task<> {
        std::string what;
        try {
          co_await corio::scoped([](corio::scope& s) -> task<> {
            for (int i = 0; i < 20; ++i) s.spawn(sleep_forever(slow_guard{}));
            s.spawn(fail_after(2ms, "first"));
            co_await corio::sleep_for(1h);  // the body is cancelled too
          });
        } catch (const std::runtime_error& e) {
          what = e.what();
        }
        CHECK(what == "first");
        CHECK(slow_guard::live == 0);
      }());
    }
  }

  TEST_CASE("only the first of several failures is reported") {
    corio::runtime rt{{.workers = 2}};
    rt.block_on([]() -> task<> {
      std::string what;
      try {
        co_await corio::scoped([](corio::scope& s) -> task<> {
          s.spawn(fail_after(1ms, "first"));
          s.spawn(fail_after(50ms, "late"));  // cancelled before it throws
          co_return;
        });
      } catch (const std::runtime_error& e) {
        what = e.what();
      }
      CHECK(what == "first");
    }());
  }

  TEST_CASE("the body's exception cancels the children and is rethrown after them") {
    for (std::size_t workers : {1u, 2u}) {
      slow_guard::live = 0;
      corio::runtime rt{{.workers = workers}};
      rt.block_on([]() -> task<> {
        bool caught = false;
        try {
          co_await corio::scoped([](corio::scope& s) -> task<> {
            for (int i = 0; i < 10; ++i) s.spawn(sleep_forever(slow_guard{}));
            co_await corio::sleep_for(1ms);
            throw std::logic_error("body");
          });
        } catch (const std::logic_error&) {
          caught = true;
        }
        CHECK(caught);
        CHECK(slow_guard::live == 0);
      }());
    }
  }

  TEST_CASE("cancelling the parent cancels the children and waits for them") {
    for (std::size_t workers : {1u, 2u, 4u}) {
      slow_guard::live = 0;
      corio::runtime rt{{.workers = workers}};
      rt.block_on([]() -> task<> {
        std::atomic<long> live_at_end{-1};
        std::atomic<int> outcome{0};
        auto h = corio::spawn(parent_of_sleepers(30, live_at_end, outcome));
        co_await corio::sleep_for(3ms);
        h.cancel();
        co_await h;  // the parent caught operation_cancelled itself
        CHECK(outcome == 2);
        CHECK(live_at_end == 0);
        CHECK(slow_guard::live == 0);
      }());
    }
  }

  TEST_CASE("a timeout around scoped cancels the children, waits, and throws timed_out") {
    for (std::size_t workers : {1u, 2u, 4u}) {
      slow_guard::live = 0;
      corio::runtime rt{{.workers = workers}};
      rt.block_on([]() -> task<> {
        bool timed_out = false;
        try {
          co_await corio::timeout(3ms, corio::scoped([](corio::scope& s) -> task<> {
                                    for (int i = 0; i < 30; ++i)
                                      s.spawn(sleep_forever(slow_guard{}));
                                    co_return;
                                  }));
        } catch (const corio::timed_out&) {
          timed_out = true;
        }
        CHECK(timed_out);
        CHECK(slow_guard::live == 0);
        // The task itself is not cancelled: it goes on normally.
        co_await corio::sleep_for(1ms);
      }());
    }
  }

  TEST_CASE("a scope cancelled by cancel() reports no error") {
    corio::runtime rt{{.workers = 2}};
    rt.block_on([]() -> task<> {
      slow_guard::live = 0;
      int r = co_await corio::scoped([](corio::scope& s) -> task<int> {
        for (int i = 0; i < 5; ++i) s.spawn(sleep_forever(slow_guard{}));
        co_await corio::sleep_for(1ms);
        s.cancel();
        s.spawn(sleep_forever(slow_guard{}));  // cancelled before it runs
        co_return 3;
      });
      CHECK(r == 3);
      CHECK(slow_guard::live == 0);
    }());
  }

  TEST_CASE("children spawn more children through the scope; scopes nest") {
    for (std::size_t workers : {1u, 4u}) {
      corio::runtime rt{{.workers = workers}};
      rt.block_on([]() -> task<> {
        std::atomic<int> leaves{0};
        co_await corio::scoped([&](corio::scope& s) -> task<> {
          s.spawn(spawn_tree(s, 6, leaves));
          co_return;
        });
        CHECK(leaves == 64);
        int inner_sum = co_await corio::scoped([](corio::scope& outer) -> task<int> {
          std::atomic<int> sum{0};
          co_await corio::scoped([&](corio::scope& inner) -> task<> {
            for (int i = 0; i < 10; ++i) inner.spawn(add_after_yields(i, sum, counted{}));
            outer.spawn(add_after_yields(100, sum, counted{}));  // borrows `sum` too: joined below
            co_return;
          });
          while (outer.active_children() != 0) co_await corio::yield_now();
          co_return sum.load();
        });
        CHECK(inner_sum == 145);
      }());
    }
  }

  TEST_CASE("values of children are discarded; an empty scope returns at once") {
    corio::runtime rt{{.workers = 1}};
    rt.block_on([]() -> task<> {
      co_await corio::scoped([](corio::scope& s) -> task<> {
        s.spawn(value_after(1ms, 5));
        co_return;
      });
      co_await corio::scoped([](corio::scope&) -> task<> { co_return; });
    }());
  }

  TEST_CASE("shutdown destroys tasks waiting in scoped and their children without leaks") {
    for (std::size_t workers : {1u, 2u, 4u}) {
      slow_guard::live = 0;
      {
        corio::runtime rt{{.workers = workers}};
        rt.block_on([]() -> task<> {
          static std::atomic<long> unused_live{0};
          static std::atomic<int> unused_outcome{0};
          for (int i = 0; i < 4; ++i) {
            corio::spawn(parent_of_sleepers(10, unused_live, unused_outcome)).detach();
          }
          co_await corio::sleep_for(3ms);
        }());
      }
      CHECK(slow_guard::live == 0);
    }
  }
}
