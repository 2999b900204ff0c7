// corio::semaphore, and through it the shared waiting machinery (wait_list.hpp).
// Invariants: the number of holders never exceeds the permits; every waiter is woken exactly
// once; a cancelled waiter takes no permit and leaves no enrollment behind; waiters are served
// in arrival order; threads outside the runtime can block on it.
#include <doctest/doctest.h>

#include "../support/invariants.hpp"

#include <corio/corio.hpp>
#include <corio/sync/semaphore.hpp>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

using corio::task;
using corio::test::scaled;
using namespace std::chrono_literals;

TEST_SUITE("semaphore") {
  TEST_CASE("holders never exceed the permits, across workers") {
    for (std::size_t workers : {1u, 2u, 4u}) {
      corio::runtime rt{{.workers = workers}};
      const long rounds = scaled(2000);
      int max_seen = rt.block_on([&]() -> task<int> {
        corio::semaphore sem(3);
        std::atomic<int> inside{0};
        std::atomic<int> max_inside{0};
        std::vector<corio::join_handle<void>> hs;
        for (int i = 0; i < 16; ++i) {
          hs.push_back(corio::spawn([](corio::semaphore& sem, std::atomic<int>& inside,
                                       std::atomic<int>& max_inside, long rounds) -> task<> {
            for (long r = 0; r < rounds; ++r) {
              co_await sem.acquire();
              int now = inside.fetch_add(1) + 1;
              int m = max_inside.load();
              while (now > m && !max_inside.compare_exchange_weak(m, now)) {
              }
              if (r % 3 == 0) co_await corio::yield_now();
              inside.fetch_sub(1);
              sem.release();
            }
          }(sem, inside, max_inside, rounds)));
        }
        for (auto& h : hs) co_await h;
        CHECK(sem.available() == 3);
        co_return max_inside.load();
      }());
      CHECK(max_seen <= 3);
      CHECK(max_seen >= 1);
    }
  }

  TEST_CASE("waiters are served in arrival order") {
    corio::runtime rt{{.workers = 1}};
    rt.block_on([]() -> task<> {
      corio::semaphore sem(0);
      std::vector<int> order;
      std::vector<corio::join_handle<void>> hs;
      for (int i = 0; i < 5; ++i) {
        hs.push_back(corio::spawn([](corio::semaphore& s, std::vector<int>& out, int id) -> task<> {
          co_await s.acquire();
          out.push_back(id);
          s.release();
        }(sem, order, i)));
        co_await corio::sleep_for(1ms);  // each enrolls before the next starts
      }
      sem.release();
      for (auto& h : hs) co_await h;
      CHECK(order == std::vector<int>{0, 1, 2, 3, 4});
    }());
  }

  TEST_CASE("a cancelled waiter takes no permit and the next waiter still gets it") {
    for (std::size_t workers : {1u, 2u}) {
      corio::runtime rt{{.workers = workers}};
      rt.block_on([]() -> task<> {
        corio::semaphore sem(0);
        auto a = corio::spawn([](corio::semaphore& s) -> task<> { co_await s.acquire(); }(sem));
        co_await corio::sleep_for(2ms);
        auto b = corio::spawn([](corio::semaphore& s) -> task<int> {
          co_await s.acquire();
          co_return 7;
        }(sem));
        co_await corio::sleep_for(2ms);
        a.cancel();
        CHECK_THROWS_AS(co_await a, corio::operation_cancelled);
        sem.release();
        CHECK(co_await b == 7);
        CHECK(sem.available() == 0);
      }());
    }
  }

  TEST_CASE("timeout around acquire") {
    corio::runtime rt{{.workers = 2}};
    rt.block_on([]() -> task<> {
      corio::semaphore sem(0);
      CHECK_THROWS_AS(co_await corio::timeout(5ms, sem.acquire()), corio::timed_out);
      sem.release();
      co_await corio::timeout(1s, sem.acquire());
      CHECK(sem.available() == 0);
    }());
  }

  TEST_CASE("cancellation racing release conserves permits") {
    for (std::size_t workers : {2u, 4u}) {
      corio::runtime rt{{.workers = workers}};
      rt.block_on([]() -> task<> {
        corio::semaphore sem(0);
        std::atomic<long> acquired{0};
        const long rounds = scaled(3000);
        for (long r = 0; r < rounds; ++r) {
          auto h = corio::spawn([](corio::semaphore& s, std::atomic<long>& n) -> task<> {
            co_await s.acquire();
            n.fetch_add(1);
          }(sem, acquired));
          if (r % 2) co_await corio::yield_now();
          sem.release();
          h.cancel();
          try {
            co_await h;
          } catch (const corio::operation_cancelled&) {
          }
        }
        // Every release either went to the waiter (acquired) or stayed in the count.
        CHECK(static_cast<long>(sem.available()) + acquired.load() == rounds);
      }());
    }
  }

  TEST_CASE("plain threads block on it alongside tasks") {
    corio::runtime rt{{.workers = 2}};
    corio::semaphore sem(0);
    corio::semaphore back(0);
    std::thread th([&] {
      for (int i = 0; i < 1000; ++i) {
        sem.acquire_blocking();
        back.release();
      }
    });
    rt.block_on([&]() -> task<> {
      for (int i = 0; i < 1000; ++i) {
        sem.release();
        co_await back.acquire();
      }
    }());
    th.join();
    CHECK(sem.available() == 0);
  }

  TEST_CASE("the blocking form refuses a worker thread") {
    corio::runtime rt{{.workers = 1}};
    rt.block_on([]() -> task<> {
      corio::semaphore sem(0);
      CHECK_THROWS_AS(sem.acquire_blocking(), std::logic_error);
      co_return;
    }());
  }

  TEST_CASE("shutdown destroys tasks waiting on a semaphore without leaving enrollments") {
    corio::semaphore sem(0);
    {
      corio::runtime rt{{.workers = 2}};
      rt.block_on([&]() -> task<> {
        for (int i = 0; i < 50; ++i) {
          corio::spawn([](corio::semaphore& s) -> task<> { co_await s.acquire(); }(sem)).detach();
        }
        co_await corio::sleep_for(5ms);
      }());
    }
    // The destroyed waiters unlinked themselves: a release now finds nobody and keeps the permit.
    sem.release();
    CHECK(sem.available() == 1);
  }
}
