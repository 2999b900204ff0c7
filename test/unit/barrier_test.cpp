// corio::barrier.
// Invariants: nobody leaves a phase before all participants arrived; exactly one leader per phase;
// the barrier is reusable across generations; a participant cancelled while waiting withdraws its
// arrival (the phase then needs another one) unless the phase already completed with it; threads
// outside the runtime can take part; a frame destroyed at shutdown withdraws its arrival.
#include <doctest/doctest.h>

#include "../support/invariants.hpp"

#include <corio/corio.hpp>
#include <corio/sync/barrier.hpp>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

using corio::task;
using corio::test::scaled;
using namespace std::chrono_literals;

namespace {

struct phase_state {
  explicit phase_state(std::size_t n) : b(n) {}
  corio::barrier b;
  std::atomic<long> arrivals{0};  // arrivals over all phases
  std::atomic<long> leaders{0};
  std::atomic<long> early{0};  // left a phase before every participant arrived in it
};

task<> participant(phase_state& s, long phases, long n) {
  for (long p = 0; p < phases; ++p) {
    s.arrivals.fetch_add(1);
    if (p % 3 == 0) co_await corio::yield_now();
    bool leader = co_await s.b.arrive_and_wait();
    if (leader) s.leaders.fetch_add(1);
    // Everyone of phase p arrived before anyone leaves it.
    if (s.arrivals.load() < (p + 1) * n) s.early.fetch_add(1);
  }
}

task<bool> arrive(corio::barrier& b) {
  co_return co_await b.arrive_and_wait();
}

}  // namespace

TEST_SUITE("barrier") {
  TEST_CASE("all participants meet in every phase, with one leader each, across workers") {
    for (std::size_t workers : {1u, 2u, 4u}) {
      CAPTURE(workers);
      corio::runtime rt{{.workers = workers}};
      const long n = 8;
      const long phases = scaled(500);
      phase_state s(n);
      rt.block_on([](phase_state& s, long n, long phases) -> task<> {
        std::vector<corio::join_handle<void>> hs;
        for (long i = 0; i < n; ++i) hs.push_back(corio::spawn(participant(s, phases, n)));
        for (auto& h : hs) co_await h;
      }(s, n, phases));
      CHECK(s.early.load() == 0);
      CHECK(s.leaders.load() == phases);
      CHECK(s.b.generation() == static_cast<std::uint64_t>(phases));
      CHECK(s.arrivals.load() == n * phases);
    }
  }

  TEST_CASE("a barrier of one never waits and always leads") {
    corio::runtime rt{{.workers = 1}};
    rt.block_on([]() -> task<> {
      corio::barrier b(1);
      CHECK(b.participants() == 1);
      for (int i = 0; i < 3; ++i) CHECK(co_await b.arrive_and_wait());
      CHECK(b.generation() == 3);
    }());
  }

  TEST_CASE("zero participants is refused") {
    CHECK_THROWS_AS(corio::barrier(0), std::invalid_argument);
  }

  TEST_CASE("a cancelled participant withdraws its arrival") {
    for (std::size_t workers : {1u, 2u}) {
      CAPTURE(workers);
      corio::runtime rt{{.workers = workers}};
      rt.block_on([]() -> task<> {
        corio::barrier b(3);
        auto a = corio::spawn(arrive(b));
        auto c = corio::spawn(arrive(b));
        co_await corio::sleep_for(2ms);
        a.cancel();
        CHECK_THROWS_AS(co_await a, corio::operation_cancelled);
        // Two arrivals are missing again: this one does not complete the phase.
        CHECK_THROWS_AS(co_await corio::timeout(2ms, b.arrive_and_wait()), corio::timed_out);
        CHECK(b.generation() == 0);
        auto d = corio::spawn(arrive(b));
        bool me = co_await b.arrive_and_wait();
        bool others = co_await c;
        bool other2 = co_await d;
        CHECK(int(me) + int(others) + int(other2) == 1);
        CHECK(b.generation() == 1);
      }());
    }
  }

  TEST_CASE("cancellation racing the last arrival keeps the count exact") {
    for (std::size_t workers : {2u, 4u}) {
      CAPTURE(workers);
      corio::runtime rt{{.workers = workers}};
      rt.block_on([]() -> task<> {
        corio::barrier b(2);
        const long rounds = scaled(2000);
        for (long r = 0; r < rounds; ++r) {
          auto a = corio::spawn(arrive(b));
          if (r % 3 != 0) co_await corio::yield_now();  // usually enrolled by now
          // Both orders: the cancel action may claim `a` before or after the other arrival
          // completes the phase, and `a` may withdraw before or after that arrival.
          corio::join_handle<bool> m;
          if (r % 2) {
            a.cancel();
            m = corio::spawn(arrive(b));
          } else {
            m = corio::spawn(arrive(b));
            a.cancel();
          }
          int returned = 0;
          int leaders = 0;
          bool a_withdrew = false;
          try {
            leaders += co_await a;
            ++returned;
          } catch (const corio::operation_cancelled&) {
            a_withdrew = true;
          }
          if (a_withdrew) {  // the phase needs another arrival
            leaders += co_await corio::spawn(arrive(b));
            ++returned;
          }
          leaders += co_await m;
          ++returned;
          // Exactly two arrivals made the phase, one of them its leader, and nothing is left
          // counted for the next round.
          REQUIRE(returned == 2);
          REQUIRE(leaders == 1);
          REQUIRE(b.generation() == static_cast<std::uint64_t>(r + 1));
        }
      }());
    }
  }

  TEST_CASE("plain threads take part alongside tasks") {
    corio::runtime rt{{.workers = 2}};
    const long phases = scaled(300);
    phase_state s(4);
    std::vector<std::thread> threads;
    std::atomic<long> thread_leaders{0};
    for (int t = 0; t < 2; ++t) {
      threads.emplace_back([&s, &thread_leaders, phases] {
        for (long p = 0; p < phases; ++p) {
          s.arrivals.fetch_add(1);
          if (s.b.arrive_and_wait_blocking()) thread_leaders.fetch_add(1);
          if (s.arrivals.load() < (p + 1) * 4) s.early.fetch_add(1);
        }
      });
    }
    rt.block_on([](phase_state& s, long phases) -> task<> {
      auto a = corio::spawn(participant(s, phases, 4));
      auto b = corio::spawn(participant(s, phases, 4));
      co_await a;
      co_await b;
    }(s, phases));
    for (auto& t : threads) t.join();
    CHECK(s.early.load() == 0);
    CHECK(s.leaders.load() + thread_leaders.load() == phases);
  }

  TEST_CASE("the blocking form refuses a worker thread") {
    corio::runtime rt{{.workers = 1}};
    rt.block_on([]() -> task<> {
      corio::barrier b(2);
      CHECK_THROWS_AS((void)b.arrive_and_wait_blocking(), std::logic_error);
      co_return;
    }());
  }

  TEST_CASE("shutdown destroys waiting participants, which withdraw their arrivals") {
    corio::barrier b(3);
    {
      corio::runtime rt{{.workers = 2}};
      rt.block_on([](corio::barrier& b) -> task<> {
        corio::spawn(arrive(b)).detach();
        corio::spawn(arrive(b)).detach();
        co_await corio::sleep_for(5ms);
      }(b));
    }
    CHECK(b.generation() == 0);
    // Both arrivals were withdrawn: three new ones are needed for the phase.
    std::atomic<int> leaders{0};
    std::vector<std::thread> threads;
    for (int i = 0; i < 3; ++i) {
      threads.emplace_back([&] {
        if (b.arrive_and_wait_blocking()) leaders.fetch_add(1);
      });
    }
    for (auto& t : threads) t.join();
    CHECK(leaders.load() == 1);
    CHECK(b.generation() == 1);
  }
}
