// corio::shared_mutex.
// Invariants: a writer holds it alone, readers may hold it together; waiters are served in
// arrival order (a run of readers together), so a waiting writer is not starved by a stream of
// readers and new readers queue behind a waiting writer; a cancelled waiter holds nothing and lets
// the waiters behind it in; threads outside the runtime can block on it; shutdown destroys
// waiters without leaving it held.
#include <doctest/doctest.h>

#include "../support/invariants.hpp"

#include <corio/corio.hpp>
#include <corio/sync/shared_mutex.hpp>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

using corio::task;
using corio::test::scaled;
using namespace std::chrono_literals;

namespace {

void note_max(std::atomic<int>& max, int now) {
  int m = max.load();
  while (now > m && !max.compare_exchange_weak(m, now)) {
  }
}

struct rw_state {
  corio::shared_mutex m;
  long value = 0;  // not atomic: written under the exclusive lock, read under a shared one
  std::atomic<int> writers{0};
  std::atomic<int> readers{0};
  std::atomic<int> max_writers{0};
  std::atomic<int> max_readers{0};
  std::atomic<long> violations{0};  // a reader saw a writer inside, or a writer saw anybody
};

task<> writer(rw_state& s, long rounds) {
  for (long r = 0; r < rounds; ++r) {
    auto g = co_await s.m.lock();
    int w = s.writers.fetch_add(1) + 1;
    note_max(s.max_writers, w);
    if (w != 1 || s.readers.load() != 0) s.violations.fetch_add(1);
    long v = s.value;
    if (r % 4 == 0) corio::test::spin_for(2us);
    if (r % 7 == 0) co_await corio::yield_now();
    s.value = v + 1;
    s.writers.fetch_sub(1);
    g.unlock();
    if (r % 2) co_await corio::yield_now();
  }
}

task<> reader(rw_state& s, long rounds) {
  for (long r = 0; r < rounds; ++r) {
    auto g = co_await s.m.lock_shared();
    note_max(s.max_readers, s.readers.fetch_add(1) + 1);
    if (s.writers.load() != 0) s.violations.fetch_add(1);
    long before = s.value;
    if (r % 3 == 0) corio::test::spin_for(2us);
    if (r % 5 == 0) co_await corio::yield_now();
    if (s.value != before) s.violations.fetch_add(1);  // nobody wrote while we read
    s.readers.fetch_sub(1);
    g.unlock();
    if (r % 2) co_await corio::yield_now();
  }
}

}  // namespace

TEST_SUITE("shared_mutex") {
  TEST_CASE("writers are exclusive and readers share, across workers") {
    for (std::size_t workers : {1u, 2u, 4u}) {
      CAPTURE(workers);
      corio::runtime rt{{.workers = workers}};
      rw_state s;
      const long rounds = scaled(1500);
      rt.block_on([](rw_state& s, long rounds) -> task<> {
        std::vector<corio::join_handle<void>> hs;
        for (int i = 0; i < 4; ++i) hs.push_back(corio::spawn(writer(s, rounds)));
        for (int i = 0; i < 12; ++i) hs.push_back(corio::spawn(reader(s, rounds)));
        for (auto& h : hs) co_await h;
      }(s, rounds));
      CHECK(s.value == 4 * rounds);
      CHECK(s.violations.load() == 0);
      CHECK(s.max_writers.load() == 1);
      CHECK(s.m.try_lock().owns_lock());
    }
  }

  TEST_CASE("readers hold it together") {
    corio::runtime rt{{.workers = 2}};
    rt.block_on([]() -> task<> {
      corio::shared_mutex m;
      auto a = co_await m.lock_shared();
      auto b = co_await m.lock_shared();
      auto c = m.try_lock_shared();
      CHECK(a.owns_lock());
      CHECK(b.owns_lock());
      CHECK(c.owns_lock());
      CHECK_FALSE(m.try_lock());
      // Readers waiting for one another would deadlock here: all of them hold it at once.
      std::atomic<int> inside{0};
      std::vector<corio::join_handle<void>> hs;
      for (int i = 0; i < 5; ++i) {
        hs.push_back(corio::spawn([](corio::shared_mutex& m, std::atomic<int>& inside) -> task<> {
          auto g = co_await m.lock_shared();
          inside.fetch_add(1);
          while (inside.load() < 5) co_await corio::yield_now();
        }(m, inside)));
      }
      for (auto& h : hs) co_await h;
      a.unlock();
      b.unlock();
      c.unlock();
      CHECK(m.try_lock());
    }());
  }

  TEST_CASE("guards: scoped, movable, unlocked early, empty when a try fails") {
    corio::runtime rt{{.workers = 1}};
    rt.block_on([]() -> task<> {
      corio::shared_mutex m;
      {
        auto w = co_await m.lock();
        CHECK(w.owns_lock());
        CHECK_FALSE(m.try_lock_shared());
        CHECK_FALSE(m.try_lock());
        corio::shared_mutex::guard moved = std::move(w);
        CHECK_FALSE(w.owns_lock());
        CHECK(moved.owns_lock());
      }
      {
        auto r = m.try_lock_shared();
        REQUIRE(r.owns_lock());
        corio::shared_mutex::shared_guard other;
        other = std::move(r);
        CHECK(other.owns_lock());
        CHECK_FALSE(m.try_lock());
        other.unlock();
        CHECK_FALSE(other.owns_lock());
      }
      CHECK(m.try_lock());
    }());
  }

  TEST_CASE("waiters are served in arrival order, a run of readers together") {
    corio::runtime rt{{.workers = 1}};
    rt.block_on([]() -> task<> {
      corio::shared_mutex m;
      std::vector<std::string> log;
      auto held = co_await m.lock();
      // Queue: R0 R1 W2 R3 R4 W5.
      const char kinds[] = {'R', 'R', 'W', 'R', 'R', 'W'};
      std::vector<corio::join_handle<void>> hs;
      for (int i = 0; i < 6; ++i) {
        hs.push_back(corio::spawn(
            [](corio::shared_mutex& m, std::vector<std::string>& log, char kind, int id) -> task<> {
              std::string me = kind + std::to_string(id);
              if (kind == 'W') {
                auto g = co_await m.lock();
                log.push_back(me + "+");
                co_await corio::yield_now();
                log.push_back(me + "-");
              } else {
                auto g = co_await m.lock_shared();
                log.push_back(me + "+");
                co_await corio::yield_now();
                log.push_back(me + "-");
              }
            }(m, log, kinds[i], i)));
        co_await corio::sleep_for(1ms);  // each enrolls before the next starts
      }
      held.unlock();
      for (auto& h : hs) co_await h;
      // R0 and R1 are granted together and overlap; W2 waits for both; R3 and R4 together after
      // W2; W5 last.
      std::vector<std::string> expected{"R0+", "R1+", "R0-", "R1-", "W2+", "W2-",
                                        "R3+", "R4+", "R3-", "R4-", "W5+", "W5-"};
      CHECK(log == expected);
    }());
  }

  TEST_CASE("a waiting writer is not starved by a stream of readers") {
    for (std::size_t workers : {1u, 2u, 4u}) {
      CAPTURE(workers);
      corio::runtime rt{{.workers = workers}};
      rt.block_on([]() -> task<> {
        corio::shared_mutex m;
        std::atomic<bool> writer_done{false};
        // Readers overlap one another continuously: without fairness there is always a reader
        // inside and the writer never gets in (the join below would hang).
        std::vector<corio::join_handle<void>> readers;
        for (int i = 0; i < 6; ++i) {
          readers.push_back(
              corio::spawn([](corio::shared_mutex& m, std::atomic<bool>& writer_done) -> task<> {
                while (!writer_done.load()) {
                  auto g = co_await m.lock_shared();
                  co_await corio::yield_now();
                }
              }(m, writer_done)));
        }
        co_await corio::sleep_for(2ms);
        auto w = corio::spawn([](corio::shared_mutex& m, std::atomic<bool>& writer_done) -> task<> {
          auto g = co_await m.lock();
          writer_done = true;
        }(m, writer_done));
        co_await w;
        CHECK(writer_done.load());
        for (auto& h : readers) co_await h;
      }());
    }
  }

  TEST_CASE("a new reader queues behind a waiting writer") {
    corio::runtime rt{{.workers = 1}};
    rt.block_on([]() -> task<> {
      corio::shared_mutex m;
      auto r = co_await m.lock_shared();
      auto w =
          corio::spawn([](corio::shared_mutex& m) -> task<> { auto g = co_await m.lock(); }(m));
      co_await corio::sleep_for(1ms);
      CHECK_FALSE(m.try_lock_shared());  // the writer waits: no overtaking it
      r.unlock();
      co_await w;
      CHECK(m.try_lock_shared());
    }());
  }

  TEST_CASE("a cancelled writer lets the readers queued behind it in") {
    for (std::size_t workers : {1u, 2u}) {
      CAPTURE(workers);
      corio::runtime rt{{.workers = workers}};
      rt.block_on([]() -> task<> {
        corio::shared_mutex m;
        auto r = co_await m.lock_shared();
        auto w =
            corio::spawn([](corio::shared_mutex& m) -> task<> { auto g = co_await m.lock(); }(m));
        co_await corio::sleep_for(2ms);
        auto r2 = corio::spawn([](corio::shared_mutex& m) -> task<int> {
          auto g = co_await m.lock_shared();
          co_return 7;
        }(m));
        co_await corio::sleep_for(2ms);
        CHECK_FALSE(r2.is_finished());  // queued behind the writer
        w.cancel();
        CHECK_THROWS_AS(co_await w, corio::operation_cancelled);
        CHECK(co_await r2 == 7);  // admitted although `r` still holds a share
        CHECK_FALSE(m.try_lock());
        r.unlock();
        CHECK(m.try_lock());
      }());
    }
  }

  TEST_CASE("timeout around lock and lock_shared") {
    corio::runtime rt{{.workers = 2}};
    rt.block_on([]() -> task<> {
      corio::shared_mutex m;
      {
        auto w = co_await m.lock();
        CHECK_THROWS_AS((void)(co_await corio::timeout(5ms, m.lock_shared())), corio::timed_out);
        CHECK_THROWS_AS((void)(co_await corio::timeout(5ms, m.lock())), corio::timed_out);
      }
      {
        auto r = co_await m.lock_shared();
        CHECK_THROWS_AS((void)(co_await corio::timeout(5ms, m.lock())), corio::timed_out);
        auto r2 = co_await corio::timeout(1s, m.lock_shared());  // the writer withdrew
        CHECK(r2.owns_lock());
      }
      auto w = co_await corio::timeout(1s, m.lock());
      CHECK(w.owns_lock());
    }());
  }

  TEST_CASE("cancellation racing unlock leaves it consistent") {
    for (std::size_t workers : {2u, 4u}) {
      CAPTURE(workers);
      corio::runtime rt{{.workers = workers}};
      rt.block_on([]() -> task<> {
        corio::shared_mutex m;
        const long rounds = scaled(1000);
        for (long r = 0; r < rounds; ++r) {
          auto held = co_await m.lock();
          auto a =
              corio::spawn([](corio::shared_mutex& m) -> task<> { auto g = co_await m.lock(); }(m));
          auto b = corio::spawn(
              [](corio::shared_mutex& m) -> task<> { auto g = co_await m.lock_shared(); }(m));
          co_await corio::yield_now();
          if (r % 2) {
            held.unlock();
            a.cancel();
          } else {
            a.cancel();
            held.unlock();
          }
          try {
            co_await a;
          } catch (const corio::operation_cancelled&) {
          }
          co_await b;  // never stuck behind a cancelled writer
          REQUIRE(m.try_lock().owns_lock());
        }
      }());
    }
  }

  TEST_CASE("plain threads block on it alongside tasks") {
    corio::runtime rt{{.workers = 2}};
    rw_state s;
    const long rounds = scaled(1000);
    std::thread tw([&s, rounds] {
      for (long r = 0; r < rounds; ++r) {
        auto g = s.m.lock_blocking();
        if (s.writers.fetch_add(1) != 0 || s.readers.load() != 0) s.violations.fetch_add(1);
        ++s.value;
        s.writers.fetch_sub(1);
      }
    });
    std::thread tr([&s, rounds] {
      for (long r = 0; r < rounds; ++r) {
        auto g = s.m.lock_shared_blocking();
        s.readers.fetch_add(1);
        if (s.writers.load() != 0) s.violations.fetch_add(1);
        s.readers.fetch_sub(1);
      }
    });
    rt.block_on([](rw_state& s, long rounds) -> task<> {
      std::vector<corio::join_handle<void>> hs;
      hs.push_back(corio::spawn(writer(s, rounds)));
      hs.push_back(corio::spawn(reader(s, rounds)));
      hs.push_back(corio::spawn(reader(s, rounds)));
      for (auto& h : hs) co_await h;
    }(s, rounds));
    tw.join();
    tr.join();
    CHECK(s.value == 2 * rounds);
    CHECK(s.violations.load() == 0);
  }

  TEST_CASE("the blocking forms refuse a worker thread") {
    corio::runtime rt{{.workers = 1}};
    rt.block_on([]() -> task<> {
      corio::shared_mutex m;
      CHECK_THROWS_AS((void)m.lock_blocking(), std::logic_error);
      CHECK_THROWS_AS((void)m.lock_shared_blocking(), std::logic_error);
      CHECK(m.try_lock());
      co_return;
    }());
  }

  TEST_CASE("shutdown destroys tasks waiting on it and leaves it free") {
    for (std::size_t workers : {1u, 2u}) {
      CAPTURE(workers);
      corio::shared_mutex m;
      {
        corio::runtime rt{{.workers = workers}};
        rt.block_on([](corio::shared_mutex& m) -> task<> {
          auto held = co_await m.lock();
          for (int i = 0; i < 30; ++i) {
            if (i % 3 == 0) {
              corio::spawn([](corio::shared_mutex& m) -> task<> { auto g = co_await m.lock(); }(m))
                  .detach();
            } else {
              corio::spawn(
                  [](corio::shared_mutex& m) -> task<> { auto g = co_await m.lock_shared(); }(m))
                  .detach();
            }
          }
          co_await corio::sleep_for(5ms);
          // Destroyed first: its guard grants the lock to the first waiter, whose frame gives it
          // back when destroyed.
          corio::spawn([](corio::shared_mutex::guard g) -> task<> {
            co_await corio::sleep_for(1h);
            g.unlock();
          }(std::move(held)))
              .detach();
          co_await corio::sleep_for(2ms);
        }(m));
      }
      CHECK(m.try_lock().owns_lock());
    }
  }
}
