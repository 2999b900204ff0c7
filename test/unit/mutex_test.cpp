// corio::mutex.
// Invariants: at most one task or thread holds the mutex at a time; unlock hands it to the longest
// waiter (FIFO, nobody barges ahead); a cancelled waiter does not own the mutex and leaves no
// enrollment behind; ownership is never lost or duplicated when a cancellation races an unlock;
// threads outside the runtime can block on it; shutdown destroys waiters without leaving the
// mutex locked.
#include <doctest/doctest.h>

#include "../support/invariants.hpp"

#include <corio/corio.hpp>
#include <corio/sync/mutex.hpp>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

using corio::task;
using corio::test::scaled;
using namespace std::chrono_literals;

namespace {

// Raises `max` to at least `now`.
void note_max(std::atomic<int>& max, int now) {
  int m = max.load();
  while (now > m && !max.compare_exchange_weak(m, now)) {
  }
}

struct shared_state {
  corio::mutex m;
  long counter = 0;  // deliberately not atomic: only ever touched under m
  std::atomic<int> inside{0};
  std::atomic<int> max_inside{0};
};

task<> increment(shared_state& s, long rounds) {
  for (long r = 0; r < rounds; ++r) {
    auto g = co_await s.m.lock();
    note_max(s.max_inside, s.inside.fetch_add(1) + 1);
    long v = s.counter;
    // A critical section long enough, now and then, for tasks on other workers to queue up, so
    // that the mutex is handed across threads; and held across a suspension now and then.
    if (r % 4 == 0) corio::test::spin_for(2us);
    if (r % 7 == 0) co_await corio::yield_now();
    s.counter = v + 1;
    s.inside.fetch_sub(1);
    g.unlock();
    if (r % 2) co_await corio::yield_now();
  }
}

}  // namespace

TEST_SUITE("mutex") {
  TEST_CASE("the mutex is never held by two tasks, across workers") {
    for (std::size_t workers : {1u, 2u, 4u}) {
      CAPTURE(workers);
      corio::runtime rt{{.workers = workers}};
      shared_state s;
      const long rounds = scaled(3000);
      const int tasks = 16;
      rt.block_on([](shared_state& s, long rounds, int tasks) -> task<> {
        std::vector<corio::join_handle<void>> hs;
        for (int i = 0; i < tasks; ++i) hs.push_back(corio::spawn(increment(s, rounds)));
        for (auto& h : hs) co_await h;
      }(s, rounds, tasks));
      CHECK(s.counter == tasks * rounds);
      CHECK(s.max_inside.load() == 1);
      CHECK(s.m.try_lock().owns_lock());
    }
  }

  TEST_CASE("guards: scoped, movable, unlocked early, empty when try_lock fails") {
    corio::runtime rt{{.workers = 1}};
    rt.block_on([]() -> task<> {
      corio::mutex m;
      corio::mutex::guard empty;
      CHECK_FALSE(empty.owns_lock());
      {
        auto g = co_await m.lock();
        CHECK(g.owns_lock());
        CHECK(static_cast<bool>(g));
        CHECK_FALSE(m.try_lock());
        corio::mutex::guard moved = std::move(g);
        CHECK_FALSE(g.owns_lock());
        CHECK(moved.owns_lock());
        CHECK_FALSE(m.try_lock().owns_lock());
        moved.unlock();
        CHECK_FALSE(moved.owns_lock());
        auto again = m.try_lock();
        CHECK(again.owns_lock());
        empty = std::move(again);  // move-assignment takes over the ownership
        CHECK(empty.owns_lock());
      }
      CHECK_FALSE(m.try_lock());  // `empty` still holds it
      empty.unlock();
      CHECK(m.try_lock());
    }());
  }

  TEST_CASE("waiters are served in arrival order and nobody barges past them") {
    corio::runtime rt{{.workers = 1}};
    rt.block_on([]() -> task<> {
      corio::mutex m;
      std::vector<int> order;
      auto held = co_await m.lock();
      std::vector<corio::join_handle<void>> hs;
      for (int i = 0; i < 5; ++i) {
        hs.push_back(corio::spawn([](corio::mutex& m, std::vector<int>& out, int id) -> task<> {
          auto g = co_await m.lock();
          out.push_back(id);
          co_await corio::yield_now();  // the next waiter must still wait for us
        }(m, order, i)));
        co_await corio::sleep_for(1ms);  // each enrolls before the next starts
      }
      held.unlock();
      // Handed to waiter 0, not free: a try_lock right after the unlock does not barge.
      CHECK_FALSE(m.try_lock());
      for (auto& h : hs) co_await h;
      CHECK(order == std::vector<int>{0, 1, 2, 3, 4});
      CHECK(m.try_lock());
    }());
  }

  TEST_CASE("a cancelled waiter does not get the mutex and the next waiter does") {
    for (std::size_t workers : {1u, 2u}) {
      CAPTURE(workers);
      corio::runtime rt{{.workers = workers}};
      rt.block_on([]() -> task<> {
        corio::mutex m;
        auto held = co_await m.lock();
        auto a = corio::spawn([](corio::mutex& m) -> task<> { auto g = co_await m.lock(); }(m));
        co_await corio::sleep_for(2ms);
        auto b = corio::spawn([](corio::mutex& m) -> task<int> {
          auto g = co_await m.lock();
          co_return 7;
        }(m));
        co_await corio::sleep_for(2ms);
        a.cancel();
        CHECK_THROWS_AS(co_await a, corio::operation_cancelled);
        CHECK_FALSE(m.try_lock());  // still ours
        held.unlock();
        CHECK(co_await b == 7);
        CHECK(m.try_lock());
      }());
    }
  }

  TEST_CASE("timeout around lock") {
    corio::runtime rt{{.workers = 2}};
    rt.block_on([]() -> task<> {
      corio::mutex m;
      auto held = co_await m.lock();
      CHECK_THROWS_AS((void)(co_await corio::timeout(5ms, m.lock())), corio::timed_out);
      held.unlock();
      auto g = co_await corio::timeout(1s, m.lock());
      CHECK(g.owns_lock());
      CHECK_FALSE(m.try_lock());
    }());
  }

  TEST_CASE("a task cancelled before it waits does not take the mutex") {
    corio::runtime rt{{.workers = 2}};
    rt.block_on([]() -> task<> {
      corio::mutex m;
      auto held = co_await m.lock();
      std::atomic<bool> started{false};
      std::atomic<bool> go{false};
      auto h = corio::spawn(
          [](corio::mutex& m, std::atomic<bool>& started, std::atomic<bool>& go) -> task<> {
            started = true;
            while (!go.load()) {  // no suspension: the cancellation arrives while it runs
            }
            auto g = co_await m.lock();
          }(m, started, go));
      std::thread canceller([&h, &started, &go] {
        while (!started.load()) std::this_thread::yield();
        h.cancel();
        go = true;
      });
      CHECK_THROWS_AS(co_await h, corio::operation_cancelled);
      canceller.join();
      held.unlock();
      CHECK(m.try_lock());
    }());
  }

  TEST_CASE("cancellation racing unlock neither loses nor duplicates ownership") {
    for (std::size_t workers : {2u, 4u}) {
      CAPTURE(workers);
      corio::runtime rt{{.workers = workers}};
      rt.block_on([]() -> task<> {
        corio::mutex m;
        std::atomic<long> acquired{0};
        std::atomic<long> cancelled{0};
        const long rounds = scaled(2000);
        for (long r = 0; r < rounds; ++r) {
          auto held = co_await m.lock();
          std::atomic<bool> started{false};
          auto h = corio::spawn(
              [](corio::mutex& m, std::atomic<long>& n, std::atomic<bool>& started) -> task<> {
                started = true;
                auto g = co_await m.lock();
                n.fetch_add(1);
              }(m, acquired, started));
          // Usually a peer steals it and it enrolls there, so that its worker runs the cancel
          // action while this one unlocks; a yield lets it run here when nobody steals it.
          for (int spins = 0; !started.load(); ++spins) {
            if (spins < 200) {
              corio::test::spin_for(1us);
            } else {
              co_await corio::yield_now();
            }
          }
          corio::test::spin_for(1us);  // past its enrollment, most of the time
          // Both orders, with gaps of 0-3 us: the cancel action may claim the waiter before,
          // after or while the unlock hands the mutex over.
          auto gap = std::chrono::microseconds(r / 2 % 4);
          if (r % 2) {
            held.unlock();
            corio::test::spin_for(gap);
            h.cancel();
          } else {
            h.cancel();
            corio::test::spin_for(gap);
            held.unlock();
          }
          try {
            co_await h;
          } catch (const corio::operation_cancelled&) {
            cancelled.fetch_add(1);
          }
          // Whichever way the race went, the mutex is free again now.
          auto check = m.try_lock();
          REQUIRE(check.owns_lock());
        }
        CHECK(acquired.load() + cancelled.load() == rounds);
      }());
    }
  }

  TEST_CASE("plain threads block on it alongside tasks") {
    corio::runtime rt{{.workers = 2}};
    shared_state s;
    const long rounds = scaled(2000);
    std::vector<std::thread> threads;
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&s, rounds] {
        for (long r = 0; r < rounds; ++r) {
          auto g = s.m.lock_blocking();
          note_max(s.max_inside, s.inside.fetch_add(1) + 1);
          ++s.counter;
          s.inside.fetch_sub(1);
        }
      });
    }
    rt.block_on([](shared_state& s, long rounds) -> task<> {
      std::vector<corio::join_handle<void>> hs;
      for (int i = 0; i < 4; ++i) hs.push_back(corio::spawn(increment(s, rounds)));
      for (auto& h : hs) co_await h;
    }(s, rounds));
    for (auto& t : threads) t.join();
    CHECK(s.counter == 6 * rounds);
    CHECK(s.max_inside.load() == 1);
  }

  TEST_CASE("the blocking form refuses a worker thread") {
    corio::runtime rt{{.workers = 1}};
    rt.block_on([]() -> task<> {
      corio::mutex m;
      CHECK_THROWS_AS((void)m.lock_blocking(), std::logic_error);
      CHECK(m.try_lock());
      co_return;
    }());
  }

  TEST_CASE("shutdown destroys tasks waiting on a mutex and leaves it unlocked") {
    for (std::size_t workers : {1u, 2u}) {
      CAPTURE(workers);
      corio::mutex m;
      {
        corio::runtime rt{{.workers = workers}};
        rt.block_on([](corio::mutex& m) -> task<> {
          auto held = co_await m.lock();
          for (int i = 0; i < 50; ++i) {
            corio::spawn([](corio::mutex& m) -> task<> { auto g = co_await m.lock(); }(m)).detach();
          }
          co_await corio::sleep_for(5ms);
          // The holder is destroyed first (newest first): its guard hands the mutex to the first
          // waiter, whose frame, destroyed before it ever resumed, gives it back.
          corio::spawn([](corio::mutex::guard g) -> task<> {
            co_await corio::sleep_for(1h);
            g.unlock();
          }(std::move(held)))
              .detach();
          co_await corio::sleep_for(2ms);
        }(m));
      }
      auto g = m.try_lock();
      CHECK(g.owns_lock());
    }
  }
}
