// corio::condition_variable.
// Invariants: a notification made after a waiter released the mutex is never lost; wait returns
// (or throws) with the guard owning the mutex again; a cancelled waiter consumes no notification;
// notify_all wakes every waiter; shutdown destroys waiters in either of their two waits without
// leaving the mutex held or unlocking it twice.
#include <doctest/doctest.h>

#include "../support/invariants.hpp"

#include <corio/corio.hpp>
#include <corio/sync/condition_variable.hpp>
#include <corio/sync/mutex.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <stdexcept>
#include <vector>

using corio::task;
using corio::test::scaled;
using namespace std::chrono_literals;

namespace {

// A bounded queue of capacity 4: producers wait while it is full, consumers while it is empty.
struct channel_state {
  corio::mutex m;
  corio::condition_variable not_empty;
  corio::condition_variable not_full;
  std::deque<long> items;  // guarded by m
  bool closed = false;     // guarded by m
  long sum = 0;            // guarded by m
  long received = 0;       // guarded by m
};

task<> producer(channel_state& s, long first, long count) {
  for (long i = first; i < first + count; ++i) {
    auto g = co_await s.m.lock();
    co_await s.not_full.wait(g, [&s] { return s.items.size() < 4; });
    s.items.push_back(i);
    if (i % 2) {
      s.not_empty.notify_one();  // under the mutex
    } else {
      g.unlock();
      s.not_empty.notify_one();  // after releasing it: still never lost
    }
  }
}

task<> consumer(channel_state& s) {
  for (;;) {
    auto g = co_await s.m.lock();
    co_await s.not_empty.wait(g, [&s] { return !s.items.empty() || s.closed; });
    REQUIRE(g.owns_lock());
    if (s.items.empty()) co_return;  // closed and drained
    s.sum += s.items.front();
    s.items.pop_front();
    ++s.received;
    g.unlock();
    s.not_full.notify_one();
  }
}

// Waits once (no predicate), counting the outcome. `entered` (guarded by m) counts the tasks that
// called wait: whoever holds the mutex and sees it knows they all enrolled and released it.
task<> wait_once(corio::mutex& m, corio::condition_variable& cv, std::atomic<int>& woken,
                 std::atomic<int>& cancelled, std::atomic<int>& owned_after, int& entered) {
  auto g = co_await m.lock();
  ++entered;
  try {
    co_await cv.wait(g);
    woken.fetch_add(1);
  } catch (const corio::operation_cancelled&) {
    cancelled.fetch_add(1);
  }
  if (g.owns_lock()) owned_after.fetch_add(1);
}

struct outcomes {
  std::atomic<int> woken{0};
  std::atomic<int> cancelled{0};
  std::atomic<int> owned{0};
  int entered = 0;  // guarded by the mutex
};

task<> wait_once(corio::mutex& m, corio::condition_variable& cv, outcomes& o) {
  return wait_once(m, cv, o.woken, o.cancelled, o.owned, o.entered);
}

// Takes the mutex once `n` tasks entered their wait (so all of them are enrolled).
task<corio::mutex::guard> lock_when_entered(corio::mutex& m, outcomes& o, int n) {
  for (;;) {
    auto g = co_await m.lock();
    if (o.entered == n) co_return g;
    g.unlock();
    co_await corio::yield_now();
  }
}

}  // namespace

TEST_SUITE("condition_variable") {
  TEST_CASE("producers and consumers lose no wake-up, across workers") {
    for (std::size_t workers : {1u, 2u, 4u}) {
      CAPTURE(workers);
      corio::runtime rt{{.workers = workers}};
      channel_state s;
      const long per_producer = scaled(2000);
      const int producers = 3;
      rt.block_on([](channel_state& s, long per_producer, int producers) -> task<> {
        std::vector<corio::join_handle<void>> ps;
        std::vector<corio::join_handle<void>> cs;
        for (int i = 0; i < 3; ++i) cs.push_back(corio::spawn(consumer(s)));
        for (int i = 0; i < producers; ++i) {
          ps.push_back(corio::spawn(producer(s, i * per_producer, per_producer)));
        }
        for (auto& h : ps) co_await h;
        {
          auto g = co_await s.m.lock();
          s.closed = true;
        }
        s.not_empty.notify_all();
        for (auto& h : cs) co_await h;
      }(s, per_producer, producers));
      const long n = producers * per_producer;
      CHECK(s.received == n);
      CHECK(s.sum == n * (n - 1) / 2);
      CHECK(s.items.empty());
    }
  }

  TEST_CASE("wait returns with the guard owning the mutex again") {
    corio::runtime rt{{.workers = 2}};
    rt.block_on([]() -> task<> {
      corio::mutex m;
      corio::condition_variable cv;
      bool ready = false;
      auto h = corio::spawn(
          [](corio::mutex& m, corio::condition_variable& cv, bool& ready) -> task<bool> {
            auto g = co_await m.lock();
            co_await cv.wait(g, [&ready] { return ready; });
            bool mine = g.owns_lock() && !m.try_lock();
            co_return mine;
          }(m, cv, ready));
      co_await corio::sleep_for(2ms);
      {
        auto g = co_await m.lock();  // free: the waiter released it
        ready = true;
        cv.notify_one();
      }
      CHECK(co_await h);
      CHECK(m.try_lock());
    }());
  }

  TEST_CASE("notify_all wakes every waiter, notify_one one") {
    for (std::size_t workers : {1u, 2u}) {
      CAPTURE(workers);
      corio::runtime rt{{.workers = workers}};
      rt.block_on([]() -> task<> {
        corio::mutex m;
        corio::condition_variable cv;
        outcomes o;
        std::vector<corio::join_handle<void>> hs;
        for (int i = 0; i < 10; ++i) {
          hs.push_back(corio::spawn(wait_once(m, cv, o)));
          // Enrolled in arrival order: each one is waiting before the next starts.
          auto g = co_await lock_when_entered(m, o, i + 1);
        }
        cv.notify_one();
        co_await hs[0];  // the longest waiter
        CHECK(o.woken.load() == 1);
        cv.notify_all();
        for (std::size_t i = 1; i < hs.size(); ++i) co_await hs[i];
        CHECK(o.woken.load() == 10);
        CHECK(o.owned.load() == 10);
        CHECK(o.cancelled.load() == 0);
      }());
    }
  }

  TEST_CASE(
      "a waiter cancelled while another task holds the mutex re-acquires it before throwing") {
    for (std::size_t workers : {1u, 2u}) {
      CAPTURE(workers);
      corio::runtime rt{{.workers = workers}};
      rt.block_on([]() -> task<> {
        corio::mutex m;
        corio::condition_variable cv;
        outcomes o;
        auto h = corio::spawn(wait_once(m, cv, o));
        auto g = co_await lock_when_entered(m, o, 1);  // h waits on cv, not on the mutex
        h.cancel();
        co_await corio::sleep_for(5ms);
        CHECK_FALSE(h.is_finished());  // waiting for the mutex we hold
        g.unlock();
        co_await h;
        CHECK(o.cancelled.load() == 1);
        CHECK(o.owned.load() == 1);
        CHECK(o.woken.load() == 0);
        CHECK(m.try_lock());
      }());
    }
  }

  TEST_CASE("timeout around wait") {
    corio::runtime rt{{.workers = 2}};
    rt.block_on([]() -> task<> {
      corio::mutex m;
      corio::condition_variable cv;
      auto g = co_await m.lock();
      CHECK_THROWS_AS(co_await corio::timeout(5ms, cv.wait(g)), corio::timed_out);
      CHECK(g.owns_lock());
      CHECK_FALSE(m.try_lock());
      bool flag = false;
      CHECK_THROWS_AS(co_await corio::timeout(5ms, cv.wait(g, [&flag] { return flag; })),
                      corio::timed_out);
      CHECK(g.owns_lock());
    }());
  }

  TEST_CASE("cancellation racing notify_one never loses the notification") {
    for (std::size_t workers : {2u, 4u}) {
      CAPTURE(workers);
      corio::runtime rt{{.workers = workers}};
      rt.block_on([]() -> task<> {
        corio::mutex m;
        corio::condition_variable cv;
        const long rounds = scaled(3000);
        for (long r = 0; r < rounds; ++r) {
          outcomes o;
          auto a = corio::spawn(wait_once(m, cv, o));
          auto b = corio::spawn(wait_once(m, cv, o));
          auto g = co_await lock_when_entered(m, o, 2);
          if (r % 3 == 0) g.unlock();  // or race while holding it
          // Both orders, with gaps: the cancel action runs on `a`'s worker and may claim it
          // before, after or while notify_one does.
          switch (r % 4) {
            case 0:
              cv.notify_one();
              a.cancel();
              break;
            case 1:
              a.cancel();
              cv.notify_one();
              break;
            case 2:
              a.cancel();
              corio::test::spin_for(std::chrono::microseconds(r % 5));
              cv.notify_one();
              break;
            default:
              a.cancel();
              co_await corio::yield_now();
              cv.notify_one();
              break;
          }
          g.unlock();
          co_await a;
          // One notification, one winner: if `a` was cancelled, the notification went to `b`,
          // which the join below then needs no more notifications for (else it hangs).
          if (o.woken.load() == 1 && o.cancelled.load() == 0) cv.notify_one();  // a took it
          co_await b;
          CHECK(o.woken.load() + o.cancelled.load() == 2);
          CHECK(o.woken.load() >= 1);
          CHECK(o.owned.load() == 2);
          REQUIRE(m.try_lock().owns_lock());
        }
      }());
    }
  }

  TEST_CASE("the predicate's exception propagates with the mutex held") {
    corio::runtime rt{{.workers = 1}};
    rt.block_on([]() -> task<> {
      corio::mutex m;
      corio::condition_variable cv;
      auto g = co_await m.lock();
      CHECK_THROWS_AS(co_await cv.wait(g, []() -> bool { throw std::runtime_error("pred"); }),
                      std::runtime_error);
      CHECK(g.owns_lock());
    }());
  }

  TEST_CASE("wait refuses a guard that owns nothing") {
    corio::runtime rt{{.workers = 1}};
    rt.block_on([]() -> task<> {
      corio::condition_variable cv;
      corio::mutex::guard none;
      CHECK_THROWS_AS(co_await cv.wait(none), std::logic_error);
    }());
  }

  TEST_CASE("shutdown destroys waiters in both waits without leaving the mutex held") {
    for (std::size_t workers : {1u, 2u}) {
      CAPTURE(workers);
      // Pair 1: tasks waiting for a notification (mutex released). Pair 2: tasks notified and
      // waiting to re-acquire the mutex, held by a task that never lets go.
      corio::mutex m1;
      corio::condition_variable cv1;
      corio::mutex m2;
      corio::condition_variable cv2;
      outcomes o1;
      outcomes o2;
      {
        corio::runtime rt{{.workers = workers}};
        rt.block_on([](corio::mutex& m1, corio::condition_variable& cv1, outcomes& o1,
                       corio::mutex& m2, corio::condition_variable& cv2, outcomes& o2) -> task<> {
          for (int i = 0; i < 10; ++i) {
            corio::spawn(wait_once(m1, cv1, o1)).detach();
            corio::spawn(wait_once(m2, cv2, o2)).detach();
          }
          auto g1 = co_await lock_when_entered(m1, o1, 10);
          g1.unlock();
          auto held = co_await lock_when_entered(m2, o2, 10);
          cv2.notify_all();
          // Destroyed first (newest first): its guard hands m2 to the first notified waiter,
          // whose frame gives it back when destroyed.
          corio::spawn([](corio::mutex::guard g) -> task<> {
            co_await corio::sleep_for(1h);
            g.unlock();
          }(std::move(held)))
              .detach();
          co_await corio::sleep_for(5ms);
        }(m1, cv1, o1, m2, cv2, o2));
      }
      CHECK(o1.woken.load() == 0);
      CHECK(o2.woken.load() == 0);
      CHECK(m1.try_lock().owns_lock());
      CHECK(m2.try_lock().owns_lock());
    }
  }
}
