// corio::completion_queue.
// Invariants: every spawned task yields exactly one event, in the order the tasks finished;
// a task's exception travels in its event and nowhere else; next() returns std::nullopt exactly
// when no task is pending and no event is queued; a cancelled next() loses no event; destroying
// a queue cancels its pending tasks without waiting and without touching freed state (ASan and
// LSan check the last part); close() cancels and waits.
#include <doctest/doctest.h>

#include "../support/invariants.hpp"

#include <corio/completion_queue.hpp>
#include <corio/corio.hpp>
#include <corio/sync/semaphore.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

using corio::task;
using corio::test::counted;
using corio::test::scaled;
using namespace std::chrono_literals;

namespace {

task<int> sleep_then(std::chrono::milliseconds d, int v) {
  co_await corio::sleep_for(d);
  co_return v;
}

task<int> wait_then(corio::semaphore& go, int v, counted) {
  co_await go.acquire();
  co_return v;
}

task<int> maybe_throw(int v) {
  co_await corio::yield_now();
  if (v % 3 == 0) throw std::runtime_error(std::to_string(v));
  co_return v * 10;
}

task<> sleep_forever(counted) {
  co_await corio::sleep_for(1h);
}

task<> touch(std::atomic<int>& n) {
  co_await corio::yield_now();
  n.fetch_add(1);
}

// Takes every event of `q` and records its tag.
task<> drain(corio::completion_queue<int>& q, std::vector<std::size_t>& tags) {
  while (auto ev = co_await q.next()) tags.push_back(ev->tag);
}

}  // namespace

TEST_SUITE("completion_queue") {
  TEST_CASE("events arrive in the order the tasks finish") {
    for (std::size_t workers : {1u, 2u, 4u}) {
      counted::live = 0;
      corio::runtime rt{{.workers = workers}};
      rt.block_on([]() -> task<> {
        // Finishing order forced by releasing each task's own semaphore in turn.
        const std::vector<int> order{3, 0, 4, 1, 2};
        std::vector<std::unique_ptr<corio::semaphore>> go;
        for (int i = 0; i < 5; ++i) go.push_back(std::make_unique<corio::semaphore>(0));
        corio::completion_queue<int> q;
        for (int i = 0; i < 5; ++i) q.spawn(wait_then(*go[i], i * 100, counted{}), i);
        CHECK(q.pending() == 5);
        for (int i : order) {
          go[i]->release();
          auto ev = co_await q.next();
          REQUIRE(ev.has_value());
          CHECK(ev->tag == static_cast<std::size_t>(i));
          CHECK(ev->value() == i * 100);
        }
        CHECK_FALSE((co_await q.next()).has_value());
        CHECK(q.empty());
        CHECK(counted::live == 0);
      }());
    }
  }

  TEST_CASE("tasks with different sleeps arrive sorted by completion") {
    for (std::size_t workers : {1u, 2u, 4u}) {
      corio::runtime rt{{.workers = workers}};
      rt.block_on([]() -> task<> {
        corio::completion_queue<int> q;
        const std::vector<int> sleeps{40, 10, 50, 0, 30, 20};
        for (std::size_t t = 0; t < sleeps.size(); ++t) {
          q.spawn(sleep_then(std::chrono::milliseconds(sleeps[t]), sleeps[t]), t);
        }
        std::vector<int> got;
        while (auto ev = co_await q.next()) {
          CHECK(sleeps[ev->tag] == ev->value());
          got.push_back(ev->value());
        }
        CHECK(got == std::vector<int>{0, 10, 20, 30, 40, 50});
      }());
    }
  }

  TEST_CASE("each event carries its own task's exception") {
    for (std::size_t workers : {1u, 4u}) {
      corio::runtime rt{{.workers = workers}};
      rt.block_on([]() -> task<> {
        corio::completion_queue<int> q;
        for (int t = 0; t < 12; ++t) q.spawn(maybe_throw(t), t);
        int values = 0;
        int errors = 0;
        while (auto ev = co_await q.next()) {
          if (ev->tag % 3 == 0) {
            CHECK(ev->has_exception());
            try {
              (void)ev->value();
              CHECK(false);
            } catch (const std::runtime_error& e) {
              CHECK(std::string(e.what()) == std::to_string(ev->tag));
              ++errors;
            }
          } else {
            CHECK_FALSE(ev->has_exception());
            CHECK(std::move(*ev).value() == static_cast<int>(ev->tag) * 10);
            ++values;
          }
        }
        CHECK(values == 8);
        CHECK(errors == 4);
      }());
    }
  }

  TEST_CASE("void tasks, string tags, and an empty queue") {
    corio::runtime rt{{.workers = 2}};
    rt.block_on([]() -> task<> {
      corio::completion_queue<void, std::string> q;
      CHECK_FALSE((co_await q.next()).has_value());  // nothing pending: at once
      std::atomic<int> n{0};
      for (int t = 0; t < 10; ++t)
        q.spawn(touch(n), std::to_string(t));  // (operator+ trips GCC 12 -Wrestrict)
      std::vector<std::string> tags;
      while (auto ev = co_await q.next()) {
        ev->value();  // void: only rethrows (nothing here)
        tags.push_back(ev->tag);
      }
      CHECK(n == 10);
      CHECK(tags.size() == 10);
      std::sort(tags.begin(), tags.end());
      CHECK(std::unique(tags.begin(), tags.end()) == tags.end());
    }());
  }

  TEST_CASE("several consumers share the events, each exactly once") {
    for (std::size_t workers : {2u, 4u}) {
      corio::runtime rt{{.workers = workers}};
      rt.block_on([]() -> task<> {
        corio::completion_queue<int> q;
        const int n = static_cast<int>(scaled(200));
        for (int t = 0; t < n; ++t) {
          q.spawn(sleep_then(std::chrono::milliseconds(t % 3), t), static_cast<std::size_t>(t));
        }
        std::vector<std::size_t> a, b, c;
        auto ha = corio::spawn(drain(q, a));
        auto hb = corio::spawn(drain(q, b));
        co_await drain(q, c);
        co_await ha;
        co_await hb;
        std::vector<std::size_t> all;
        for (auto* v : {&a, &b, &c}) all.insert(all.end(), v->begin(), v->end());
        std::sort(all.begin(), all.end());
        CHECK(all.size() == static_cast<std::size_t>(n));
        for (int t = 0; t < n; ++t) CHECK(all[t] == static_cast<std::size_t>(t));
      }());
    }
  }

  TEST_CASE("a cancelled next() loses no event") {
    corio::runtime rt{{.workers = 2}};
    rt.block_on([]() -> task<> {
      corio::completion_queue<int> q;
      q.spawn(sleep_then(20ms, 5), 1);
      CHECK_THROWS_AS(co_await corio::timeout(1ms, q.next()), corio::timed_out);
      auto ev = co_await q.next();
      REQUIRE(ev.has_value());
      CHECK(ev->value() == 5);
    }());
  }

  TEST_CASE("destroying a queue with pending tasks cancels them; nothing leaks") {
    for (std::size_t workers : {1u, 2u, 4u}) {
      counted::live = 0;
      corio::runtime rt{{.workers = workers}};
      rt.block_on([]() -> task<> {
        {
          corio::completion_queue<void> q;
          for (int t = 0; t < 20; ++t) q.spawn(sleep_forever(counted{}), t);
          co_await corio::sleep_for(1ms);
          q.spawn(sleep_forever(counted{}), 99);  // not started yet when the queue goes
        }
        // The tasks finish on their own, after the queue's memory is gone.
        for (int i = 0; i < 5000 && counted::live != 0; ++i) co_await corio::sleep_for(1ms);
        CHECK(counted::live == 0);
      }());
    }
  }

  TEST_CASE("a queue destroyed with unread events and pending tasks at shutdown") {
    for (std::size_t workers : {1u, 2u, 4u}) {
      counted::live = 0;
      {
        corio::runtime rt{{.workers = workers}};
        rt.block_on([]() -> task<> {
          auto q = std::make_unique<corio::completion_queue<int>>();
          static corio::semaphore go(0);  // outlives the frames that shutdown destroys
          for (int t = 0; t < 10; ++t) q->spawn(sleep_then(0ms, t), t);
          while (q->pending() != 0) co_await corio::yield_now();
          CHECK(q->ready() == 10);
          for (int t = 0; t < 5; ++t) q->spawn(wait_then(go, t, counted{}), t);
          q.reset();  // drops 10 events; cancels 5 tasks without waiting for them
          co_return;  // shutdown may destroy them before they ran their cancellation
        }());
      }
      CHECK(counted::live == 0);
    }
  }

  TEST_CASE("close() cancels the pending tasks and waits for them; events stay readable") {
    for (std::size_t workers : {1u, 2u, 4u}) {
      counted::live = 0;
      corio::runtime rt{{.workers = workers}};
      rt.block_on([]() -> task<> {
        corio::completion_queue<void> q;
        for (int t = 0; t < 10; ++t) q.spawn(sleep_forever(counted{}), t);
        co_await q.close();
        CHECK(counted::live == 0);
        CHECK(q.pending() == 0);
        CHECK(q.ready() == 10);
        int cancelled = 0;
        while (auto ev = co_await q.next()) {
          try {
            ev->value();
          } catch (const corio::operation_cancelled&) {
            ++cancelled;
          }
        }
        CHECK(cancelled == 10);
        // The queue stays usable.
        std::atomic<int> n{0};
        q.spawn(touch(n), 1);
        CHECK((co_await q.next()).has_value());
        CHECK(n == 1);
      }());
    }
  }

  TEST_CASE("shutdown destroys a task waiting in next()") {
    for (std::size_t workers : {1u, 2u}) {
      counted::live = 0;
      {
        corio::runtime rt{{.workers = workers}};
        rt.block_on([]() -> task<> {
          corio::spawn([](counted) -> task<> {
            corio::completion_queue<void> q;
            q.spawn(sleep_forever(counted{}), 0);
            (void)co_await q.next();
          }(counted{}))
              .detach();
          co_await corio::sleep_for(2ms);
        }());
      }
      CHECK(counted::live == 0);
    }
  }
}
