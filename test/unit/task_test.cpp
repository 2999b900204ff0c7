// task<T>: laziness, results, exceptions, ownership, and symmetric transfer.
// Invariant: a task runs only when awaited, delivers exactly what it returned or threw, and any
// number of synchronous completions in a row does not grow the stack.
#include <doctest/doctest.h>

#include "../support/invariants.hpp"
#include "../support/small_stack.hpp"

#include <corio/corio.hpp>

#include <memory>
#include <stdexcept>
#include <string>

using corio::task;

namespace {

corio::runtime_options one_worker() {
  return corio::runtime_options{.workers = 1};
}

task<int> answer() {
  co_return 42;
}
task<> nothing(int& flag) {
  flag = 1;
  co_return;
}
task<std::string> text() {
  co_return std::string(100, 'x');
}
task<std::unique_ptr<int>> move_only() {
  co_return std::make_unique<int>(7);
}
task<int&> ref_to(int& x) {
  co_return x;
}
task<int> thrower() {
  throw std::runtime_error("boom");
  co_return 0;
}
task<int> add_one(int x) {
  co_return x + 1;
}

// n co_awaits of a task that completes without suspending, in one loop: the stack must not grow.
task<long> sum_of_sync_completions(long n) {
  long s = 0;
  for (long i = 0; i < n; ++i) s += co_await add_one(0);
  co_return s;
}

}  // namespace

TEST_SUITE("task") {
  TEST_CASE("task doesn't start until awaited") {
    int flag = 0;
    {
      auto t = nothing(flag);
      CHECK(t.valid());
      CHECK_FALSE(t.done());
      CHECK(flag == 0);
    }
    CHECK(flag == 0);  // destroyed without ever running
  }

  TEST_CASE("awaiting a task yields its value, void, move-only and reference results") {
    int x = 5;
    auto out = corio::run(
        [](int& x) -> task<int> {
          int flag = 0;
          co_await nothing(flag);
          CHECK(flag == 1);
          std::string s = co_await text();
          CHECK(s.size() == 100);
          auto p = co_await move_only();
          CHECK(*p == 7);
          int& r = co_await ref_to(x);
          CHECK(&r == &x);
          co_return co_await answer();
        }(x),
        one_worker());
    CHECK(out == 42);
  }

  TEST_CASE("awaiting an lvalue task gives a reference; awaiting it again gives the value again") {
    int out = corio::run(
        []() -> task<int> {
          auto t = answer();
          int& a = co_await t;
          CHECK(t.done());
          int& b = co_await t;  // already done: no suspension, same storage
          CHECK(&a == &b);
          co_return a;
        }(),
        one_worker());
    CHECK(out == 42);
  }

  TEST_CASE("an exception propagates to the awaiter with its type") {
    bool caught = corio::run(
        []() -> task<bool> {
          try {
            co_await thrower();
          } catch (const std::runtime_error& e) {
            co_return std::string(e.what()) == "boom";
          }
          co_return false;
        }(),
        one_worker());
    CHECK(caught);
  }

  TEST_CASE("awaiting an empty task throws std::logic_error") {
    bool caught = corio::run(
        []() -> task<bool> {
          task<int> empty;
          try {
            co_await std::move(empty);
          } catch (const std::logic_error&) {
            co_return true;
          }
          co_return false;
        }(),
        one_worker());
    CHECK(caught);
  }

  TEST_CASE("moving a task transfers ownership of the frame") {
    auto a = answer();
    task<int> b = std::move(a);
    CHECK_FALSE(a.valid());
    CHECK(b.valid());
    task<int> c;
    c = std::move(b);
    CHECK(c.valid());
    CHECK(corio::run(std::move(c), one_worker()) == 42);
  }

  TEST_CASE("a million synchronous completions in a loop do not grow the stack") {
    long n = corio::test::scaled(1'000'000);
    long sum = corio::run(sum_of_sync_completions(n), one_worker());
    CHECK(sum == n);
  }

  TEST_CASE(
      "on a 256 KiB worker stack: a million synchronous task completions and a million "
      "inline channel round trips, with the stack's high-water mark bounded (T31)") {
    long n = corio::test::scaled(1'000'000);
    long tasks = 0, values = 0;
#if defined(__SANITIZE_THREAD__)
    // GCC's TSan refuses a thread stack smaller than it needs for its own TLS (about 900 KiB).
    constexpr std::size_t stack_size = std::size_t{1} << 20;
#else
    constexpr std::size_t stack_size = std::size_t{256} << 10;
#endif
    corio::test::stack_report r = corio::test::on_stack(stack_size, [&] {
      // One worker: the block_on thread, this small-stack thread, runs every task.
      tasks = corio::run(sum_of_sync_completions(n), one_worker());
      values = corio::run(
          [](long n) -> task<long> {
            // Capacity 1: each send finds room and each receive a value, so both complete
            // without suspending, a million times each.
            auto [tx, rx] = corio::make_channel<long>(1);
            long s = 0;
            for (long i = 0; i < n; ++i) {
              co_await tx.send(i);
              s += (co_await rx.recv()).value() == i;
            }
            co_return s;
          }(n),
          one_worker());
    });
    REQUIRE(r.started);
    CHECK_FALSE(r.error);
    CHECK(tasks == n);
    CHECK(values == n);
    // What a thread that does nothing uses already (glibc puts the static TLS at the top of a
    // given stack, and GCC's TSan needs much of it): the loops' own use is the difference.
    corio::test::stack_report idle = corio::test::on_stack(stack_size, [] {});
    REQUIRE(idle.started);
    const std::size_t used = r.used > idle.used ? r.used - idle.used : 0;
    MESSAGE("stack high-water mark: " << used << " bytes beyond an idle thread's " << idle.used
                                      << ", of " << stack_size);
    // A loop that grew the stack per iteration would have overflowed long before; the bound is
    // what one pass through the worker loop, the probe and block_on take (about 10 KiB, -O0 and
    // sanitizers included).
    CHECK(used < std::size_t{64} << 10);
  }

  TEST_CASE("recursion 100000 deep through tasks completes without stack overflow") {
    struct rec {
      static task<long> depth(long n) {
        if (n == 0) co_return 0;
        co_return 1 + co_await depth(n - 1);
      }
    };
    CHECK(corio::run(rec::depth(100'000), one_worker()) == 100'000);
  }

  TEST_CASE("destroying a suspended chain destroys every frame in it") {
    corio::test::counted::live = 0;
    struct chain {
      static task<> leaf() {
        corio::test::counted c;
        co_await corio::sleep_for(std::chrono::hours(1));
      }
      static task<> middle() {
        corio::test::counted c;
        co_await leaf();
      }
    };
    corio::run(
        []() -> task<> {
          corio::spawn(chain::middle()).detach();
          co_await corio::sleep_for(std::chrono::milliseconds(5));
          CHECK(corio::test::counted::live == 2);
        }(),
        one_worker());
    CHECK(corio::test::counted::live == 0);
  }
}
