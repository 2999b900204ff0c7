// corio::task_local.
// Invariants: a value belongs to one root task (every coroutine it awaits sees it), whatever
// worker runs the task; a spawned task starts with a copy of its spawner's values and later
// writes on either side stay on that side; values are destroyed with the last task using them;
// using a task_local outside a task throws std::logic_error.
#include <doctest/doctest.h>

#include "../support/invariants.hpp"

#include <corio/completion_queue.hpp>
#include <corio/corio.hpp>
#include <corio/scope.hpp>
#include <corio/task_local.hpp>
#include <corio/when_all.hpp>

#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using corio::task;
using corio::test::counted;
using corio::test::scaled;
using namespace std::chrono_literals;

namespace {

corio::task_local<int> request_id;
corio::task_local<std::string> user{"nobody"};

struct tracked {
  int v = 0;
  counted c;
};
corio::task_local<tracked> tracked_value;

task<int> nested_read() {
  co_await corio::yield_now();
  co_return request_id.get();
}

task<int> read_after_yield() {
  co_await corio::yield_now();
  co_return request_id.get();
}

// Sets its own value, then checks it across `yields` suspensions while other tasks do the same.
task<bool> keeps_value(int v, long yields) {
  request_id.set(v);
  user.set(std::to_string(v));
  bool ok = true;
  for (long i = 0; i < yields; ++i) {
    co_await corio::yield_now();
    ok = ok && request_id.get() == v && user.get() == std::to_string(v);
  }
  co_return ok;
}

task<> child_sets(int v, std::atomic<int>& seen_before) {
  seen_before = request_id.get();
  request_id.set(v);
  co_await corio::yield_now();
  CHECK(request_id.get() == v);
}

task<> record_id(std::atomic<int>& out) {
  co_await corio::yield_now();
  out = request_id.get();
}

task<int> id_of_task() {
  co_await corio::yield_now();
  co_return request_id.get();
}

}  // namespace

TEST_SUITE("task_local") {
  TEST_CASE("unset values read as the default; set, get, try_get, reset") {
    corio::runtime rt{{.workers = 1}};
    rt.block_on([]() -> task<> {
      CHECK(request_id.get() == 0);
      CHECK_FALSE(request_id.is_set());
      CHECK_FALSE(request_id.try_get().has_value());
      CHECK(user.get() == "nobody");
      request_id.set(5);
      user.set("ann");
      CHECK(request_id.get() == 5);
      CHECK(*request_id.try_get() == 5);
      CHECK(user.get() == "ann");
      CHECK(co_await nested_read() == 5);  // awaited coroutines belong to the same task
      request_id.reset();
      CHECK(request_id.get() == 0);
      CHECK(user.get() == "ann");
      co_return;
    }());
  }

  TEST_CASE("using a task_local outside a task throws") {
    CHECK_THROWS_AS((void)request_id.get(), std::logic_error);
    CHECK_THROWS_AS(request_id.set(1), std::logic_error);
    CHECK_THROWS_AS(request_id.reset(), std::logic_error);
  }

  TEST_CASE("a spawned task starts with a copy of its spawner's values") {
    for (std::size_t workers : {1u, 2u, 4u}) {
      corio::runtime rt{{.workers = workers}};
      rt.block_on([]() -> task<> {
        request_id.set(7);
        std::atomic<int> seen{-1};
        auto h = corio::spawn(child_sets(8, seen));
        request_id.set(9);  // after the spawn: the child does not see it
        co_await h;
        CHECK(seen == 7);
        CHECK(request_id.get() == 9);  // the child's write stayed in the child
        // Unset in the spawner: the child starts unset too.
        request_id.reset();
        std::atomic<int> out{-1};
        co_await corio::spawn(record_id(out));
        CHECK(out == 0);
      }());
    }
  }

  TEST_CASE("values are inherited through scoped, when_all and completion_queue") {
    corio::runtime rt{{.workers = 2}};
    rt.block_on([]() -> task<> {
      request_id.set(11);
      std::atomic<int> a{-1};
      co_await corio::scoped([&](corio::scope& s) -> task<> {
        s.spawn(record_id(a));
        co_return;
      });
      CHECK(a == 11);
      auto [x, y] = co_await corio::when_all(id_of_task(), id_of_task());
      CHECK(x == 11);
      CHECK(y == 11);
      corio::completion_queue<int> q;
      q.spawn(id_of_task(), 0);
      auto ev = co_await q.next();
      CHECK(ev->value() == 11);
    }());
  }

  TEST_CASE("values are independent per task and survive migrations between workers") {
    for (std::size_t workers : {1u, 2u, 4u}) {
      corio::runtime rt{{.workers = workers}};
      rt.block_on([]() -> task<> {
        std::vector<corio::join_handle<bool>> hs;
        const long yields = scaled(1000);
        for (int v = 1; v <= 8; ++v) hs.push_back(corio::spawn(keeps_value(v, yields)));
        for (auto& h : hs) CHECK(co_await h);
        CHECK(request_id.get() == 0);  // main never set it
      }());
    }
  }

  TEST_CASE("with_local sets a value around a task and restores the previous one") {
    corio::runtime rt{{.workers = 2}};
    rt.block_on([]() -> task<> {
      CHECK(co_await corio::with_local(request_id, 3, read_after_yield()) == 3);
      CHECK_FALSE(request_id.is_set());
      request_id.set(1);
      CHECK(co_await corio::with_local(request_id, 4, read_after_yield()) == 4);
      CHECK(request_id.get() == 1);
      CHECK_THROWS_AS(co_await corio::with_local(request_id, 5,
                                                 []() -> task<> {
                                                   co_await corio::yield_now();
                                                   throw std::runtime_error("x");
                                                 }()),
                      std::runtime_error);
      CHECK(request_id.get() == 1);
    }());
  }

  TEST_CASE("values are destroyed with the last task that uses them") {
    counted::live = 0;
    {
      corio::runtime rt{{.workers = 2}};
      rt.block_on([]() -> task<> {
        tracked_value.set(tracked{1, {}});
        CHECK(counted::live == 1);
        std::vector<corio::join_handle<int>> hs;
        for (int i = 0; i < 10; ++i) hs.push_back(corio::spawn(id_of_task()));  // shared
        for (auto& h : hs) (void)co_await h;
        tracked_value.set(tracked{2, {}});  // in place: nobody shares it any more
        CHECK(tracked_value.get().v == 2);
        co_return;
      }());
    }
    CHECK(counted::live == 0);
  }

  TEST_CASE("shutdown destroys tasks holding values without leaks") {
    counted::live = 0;
    {
      corio::runtime rt{{.workers = 2}};
      rt.block_on([]() -> task<> {
        tracked_value.set(tracked{3, {}});
        for (int i = 0; i < 5; ++i) {
          corio::spawn([]() -> task<> {
            tracked_value.set(tracked{4, {}});  // copies on write
            co_await corio::sleep_for(1h);
          }())
              .detach();
        }
        co_await corio::sleep_for(2ms);
      }());
    }
    CHECK(counted::live == 0);
  }
}
