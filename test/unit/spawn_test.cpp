// spawn, spawn_local, join_handle.
// Invariant: a spawned task runs exactly once, concurrently with its spawner; its handle delivers
// its value or exception exactly once; an exception nobody joins reaches the hook exactly once.
#include <doctest/doctest.h>

#include "../support/invariants.hpp"

#include <corio/corio.hpp>
#include <corio/detail/diagnostics.hpp>

#include <atomic>
#include <exception>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

using corio::task;
using namespace std::chrono_literals;

namespace {

task<int> twice(int x) {
  co_await corio::yield_now();
  co_return 2 * x;
}

struct level_error : std::runtime_error {
  int level;
  explicit level_error(int l) : std::runtime_error("level"), level(l) {}
};

task<int> level3() {
  co_await corio::yield_now();
  throw level_error(3);
}
task<int> level2() {
  co_return co_await level3() + 1;
}
task<int> level1() {
  co_return co_await level2() + 1;
}

struct hook_log {
  std::mutex m;
  std::vector<std::pair<std::string, std::uint64_t>> seen;
  auto hook() {
    return [this](std::exception_ptr e, std::uint64_t id) {
      std::string what;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& x) {
        what = x.what();
      }
      std::lock_guard lock(m);
      seen.emplace_back(what, id);
    };
  }
};

}  // namespace

TEST_SUITE("spawn") {
  TEST_CASE("spawn runs concurrently and join returns the value") {
    int v = corio::run(
        []() -> task<int> {
          auto a = corio::spawn(twice(1));
          auto b = corio::spawn(twice(2));
          CHECK(a.valid());
          CHECK(a.id() != 0);
          CHECK(a.id() != b.id());
          co_return co_await a + co_await b;
        }(),
        {.workers = 2});
    CHECK(v == 6);
  }

  TEST_CASE("spawn does not run the task inline: the spawner goes on first") {
    corio::run(
        []() -> task<> {
          bool ran = false;
          auto h = corio::spawn([](bool& ran) -> task<> {
            ran = true;
            co_return;
          }(ran));
          CHECK_FALSE(ran);  // one worker: nothing else can have run it yet
          co_await h;
          CHECK(ran);
        }(),
        {.workers = 1});
  }

  TEST_CASE("an exception crosses three levels of tasks and a join_handle with its type") {
    int level = corio::run(
        []() -> task<int> {
          auto h = corio::spawn(level1());
          try {
            co_await h;
          } catch (const level_error& e) {
            co_return e.level;
          }
          co_return 0;
        }(),
        {.workers = 2});
    CHECK(level == 3);
  }

  TEST_CASE("join_handle: is_finished, valid after join, and a second await throws") {
    corio::run(
        []() -> task<> {
          auto h = corio::spawn(twice(5));
          while (!h.is_finished()) co_await corio::yield_now();
          CHECK(co_await h == 10);
          CHECK_FALSE(h.valid());
          CHECK(h.id() == 0);
          bool threw = false;
          try {
            co_await h;
          } catch (const std::logic_error&) {
            threw = true;
          }
          CHECK(threw);
        }(),
        {.workers = 2});
  }

  TEST_CASE("join_handle is movable; a moved-to handle joins") {
    int v = corio::run(
        []() -> task<int> {
          auto h = corio::spawn(twice(4));
          corio::join_handle<int> g;
          g = std::move(h);
          CHECK_FALSE(h.valid());
          co_return co_await g;
        }(),
        {.workers = 2});
    CHECK(v == 8);
  }

  TEST_CASE("a detached task runs to completion") {
    std::atomic<int> done{0};
    corio::run(
        [](std::atomic<int>& done) -> task<> {
          for (int i = 0; i < 100; ++i) {
            corio::spawn([](std::atomic<int>& d) -> task<> {
              co_await corio::yield_now();
              ++d;
            }(done))
                .detach();
          }
          while (done.load() != 100) co_await corio::sleep_for(1ms);
        }(done),
        {.workers = 2});
    CHECK(done == 100);
  }

  TEST_CASE("a detached task's exception reaches on_unhandled_exception exactly once") {
    hook_log log;
    std::uint64_t id = 0;
    corio::run(
        [](std::uint64_t& id) -> task<> {
          auto h = corio::spawn([]() -> task<> {
            co_await corio::yield_now();
            throw std::runtime_error("detached boom");
          }());
          id = h.id();
          h.detach();
          co_await corio::sleep_for(20ms);
        }(id),
        {.workers = 2, .on_unhandled_exception = log.hook()});
    REQUIRE(log.seen.size() == 1);
    CHECK(log.seen[0].first == "detached boom");
    CHECK(log.seen[0].second == id);
  }

  TEST_CASE(
      "an exception in a task whose handle is dropped unawaited is reported; a joined one is not") {
    hook_log log;
    corio::run(
        []() -> task<> {
          auto thrower = [](const char* msg) -> task<> {
            co_await corio::yield_now();
            throw std::runtime_error(msg);
          };
          auto joined = corio::spawn(thrower("joined"));
          {
            auto dropped = corio::spawn(thrower("dropped after finishing"));
            while (!dropped.is_finished()) co_await corio::yield_now();
          }  // handle dropped here, after the task finished
          try {
            co_await joined;
          } catch (const std::runtime_error&) {
          }
        }(),
        {.workers = 2, .on_unhandled_exception = log.hook()});
    REQUIRE(log.seen.size() == 1);
    CHECK(log.seen[0].first == "dropped after finishing");
  }

  TEST_CASE("the runtime goes on after a detached task throws (default hook prints)") {
    int v = corio::run(
        []() -> task<int> {
          corio::spawn([]() -> task<> {
            throw std::runtime_error("printed to stderr by the default hook (expected)");
            co_return;
          }())
              .detach();
          co_await corio::sleep_for(5ms);
          co_return co_await corio::spawn(twice(21));
        }(),
        {.workers = 2});
    CHECK(v == 42);
  }

  TEST_CASE("spawn outside a runtime throws std::logic_error and destroys the task") {
    corio::test::counted::live = 0;
    CHECK_THROWS_AS(
        corio::spawn([](corio::test::counted) -> task<> { co_return; }(corio::test::counted{})),
        std::logic_error);
    CHECK_THROWS_AS(corio::spawn_local(twice(1)), std::logic_error);
    CHECK(corio::test::counted::live == 0);
  }

  TEST_CASE("spawn_local pins a task to its worker across yields, sleeps and joins") {
    corio::run(
        []() -> task<> {
          co_await corio::detail::resume_on(1);
          int home = corio::detail::current_worker_index();
          CHECK(home == 1);
          std::vector<corio::join_handle<bool>> pinned;
          for (int i = 0; i < 20; ++i) {
            pinned.push_back(corio::spawn_local([](int home) -> task<bool> {
              bool ok = corio::detail::current_worker_index() == home;
              for (int j = 0; j < 50; ++j) {
                co_await corio::yield_now();
                ok = ok && corio::detail::current_worker_index() == home;
                if (j % 10 == 0) {
                  co_await corio::sleep_for(100us);
                  ok = ok && corio::detail::current_worker_index() == home;
                  co_await corio::spawn(twice(j));  // the child may run anywhere
                  ok = ok && corio::detail::current_worker_index() == home;
                }
              }
              co_return ok;
            }(home)));
          }
          // Keep the other worker busy with stealable work meanwhile.
          std::vector<corio::join_handle<int>> noise;
          for (int i = 0; i < 200; ++i) noise.push_back(corio::spawn(twice(i)));
          for (auto& h : noise) co_await h;
          for (auto& h : pinned) CHECK(co_await h);
        }(),
        {.workers = 2});
  }

  TEST_CASE("resume_on refuses to move a pinned task") {
    bool threw = corio::run(
        []() -> task<bool> {
          co_return co_await corio::spawn_local([]() -> task<bool> {
            try {
              co_await corio::detail::resume_on(1);
            } catch (const std::logic_error&) {
              co_return true;
            }
            co_return false;
          }());
        }(),
        {.workers = 2});
    CHECK(threw);
  }

  TEST_CASE("tasks spread over all workers") {
    std::set<int> seen = corio::run(
        []() -> task<std::set<int>> {
          std::vector<corio::join_handle<int>> hs;
          for (int i = 0; i < 2000; ++i) {
            hs.push_back(corio::spawn([]() -> task<int> {
              corio::test::spin_for(std::chrono::microseconds(25));  // 50 ms of work in all
              co_return corio::detail::current_worker_index();
            }()));
          }
          std::set<int> s;
          for (auto& h : hs) s.insert(co_await h);
          co_return s;
        }(),
        {.workers = 2});
    CHECK(seen.size() == 2);
  }
}
