// The spin lock of channels and sync primitives, and its home bias (detail/wait_list.hpp).
// Invariants: a lock made with home_bias on the worker of a one-worker runtime is biased to that
// thread, and on no other kind of thread or runtime, nor without membarrier; whichever threads
// take it, at most one holds it at a time, also while another thread revokes the bias in the
// middle of the home thread's critical sections; after a revocation it stays unbiased.
#include <doctest/doctest.h>

#include "../support/invariants.hpp"

#include <corio/corio.hpp>
#include <corio/detail/wait_list.hpp>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

using corio::task;
using corio::detail::spin_lock;
using corio::test::disable_features;
using corio::test::scaled;

namespace {

// Whether a lock made with home_bias by a task of a runtime with `workers` workers is biased.
bool biased_on(std::size_t workers) {
  corio::runtime rt{{.workers = workers}};
  return rt.block_on([]() -> task<bool> {
    spin_lock l{spin_lock::home_bias};
    co_return l.biased();
  }());
}

// One lock, a counter only ever touched under it, and a critical section wide enough that two
// holders at once lose increments.
struct guarded {
  spin_lock lock{spin_lock::home_bias};
  long counter = 0;
  std::atomic<int> inside{0};
  std::atomic<int> max_inside{0};

  // `long_section`: this critical section outlasts the revoker's membarrier (about 10 us
  // here), so that a revoker that did not wait for the home thread would overlap with it.
  void increment(bool long_section) {
    lock.lock();
    int now = inside.fetch_add(1, std::memory_order_relaxed) + 1;
    if (now > max_inside.load(std::memory_order_relaxed)) max_inside.store(now);
    long v = counter;
    if (long_section) {
      corio::test::spin_for(std::chrono::microseconds(40));
    } else {
      for (int i = 0; i < 20; ++i) __builtin_ia32_pause();
    }
    counter = v + 1;
    inside.fetch_sub(1, std::memory_order_relaxed);
    lock.unlock();
  }
};

}  // namespace

TEST_SUITE("spin_lock") {
  TEST_CASE("home_bias biases to the worker of a one-worker runtime only") {
    spin_lock::reset_revocations();
    CHECK(biased_on(1));
    CHECK_FALSE(biased_on(2));
    // Off any worker (this thread, before and after a session).
    CHECK_FALSE(spin_lock{spin_lock::home_bias}.biased());
    CHECK_FALSE(spin_lock{}.biased());
    {
      disable_features d("membarrier");
      corio::runtime rt{{.workers = 1}};
      CHECK_FALSE(rt.features().membarrier);
      CHECK_FALSE(rt.block_on([]() -> task<bool> {
        spin_lock l{spin_lock::home_bias};
        co_return l.biased();
      }()));
    }
  }

  TEST_CASE("after revocation_limit revocations new locks are not biased") {
    spin_lock::reset_revocations();
    corio::runtime rt{{.workers = 1}};
    rt.block_on([]() -> task<> {
      const unsigned n = spin_lock::revocation_limit;
      std::vector<std::unique_ptr<spin_lock>> locks;
      for (unsigned i = 0; i < n; ++i) {
        locks.push_back(std::make_unique<spin_lock>(spin_lock::home_bias));
        REQUIRE(locks.back()->biased());
      }
      std::thread([&] {
        for (auto& l : locks) {
          l->lock();  // revokes
          l->unlock();
        }
      }).join();
      CHECK(spin_lock::revocations() == n);
      spin_lock after{spin_lock::home_bias};
      CHECK_FALSE(after.biased());
      spin_lock::reset_revocations();
      spin_lock again{spin_lock::home_bias};
      CHECK(again.biased());
      co_return;
    }());
  }

  TEST_CASE("after a revocation every thread takes the real lock, the home thread too") {
    spin_lock::reset_revocations();
    corio::runtime rt{{.workers = 1}};
    rt.block_on([]() -> task<> {
      spin_lock l{spin_lock::home_bias};
      REQUIRE(l.biased());
      l.lock();  // biased
      l.unlock();
      std::atomic<bool> other_holds{false};
      std::atomic<bool> release{false};
      std::thread other([&] {
        l.lock();  // revokes
        other_holds.store(true);
        while (!release.load()) {
        }
        l.unlock();
      });
      while (!other_holds.load()) {
      }
      CHECK_FALSE(l.biased());
      // The home thread must now wait for the other thread's unlock.
      std::atomic<bool> home_got{false};
      std::thread releaser([&] {
        corio::test::spin_for(std::chrono::milliseconds(20));
        CHECK_FALSE(home_got.load());
        release.store(true);
      });
      l.lock();
      home_got.store(true);
      CHECK(release.load());
      l.unlock();
      other.join();
      releaser.join();
      co_return;
    }());
  }

  TEST_CASE("a plain thread revoking the bias mid-traffic never shares the lock") {
    // Each round makes a fresh biased lock on the worker, then the worker and a plain thread
    // both hammer it; the plain thread's first lock revokes the bias while the worker is inside
    // (or about to enter) a critical section. Every increment must survive, and nobody may be
    // inside together.
    corio::runtime rt{{.workers = 1}};
    const int rounds = static_cast<int>(scaled(200));
    const int per_side = 1'000;
    rt.block_on([](int rounds, int per_side) -> task<> {
      for (int r = 0; r < rounds; ++r) {
        spin_lock::reset_revocations();  // under the limit, whatever CORIO_TEST_SCALE asks
        auto g = std::make_unique<guarded>();
        REQUIRE(g->lock.biased());
        // Both sides start together: the thread says it runs, the worker says go.
        std::atomic<int> phase{0};
        std::thread other([&] {
          phase.store(1);
          while (phase.load() != 2) {
          }
          for (int i = 0; i < per_side; ++i) g->increment(false);
        });
        while (phase.load() != 1) {
        }
        phase.store(2);
        for (int i = 0; i < per_side; ++i) g->increment(i % 8 == 0);
        other.join();
        CHECK(g->counter == 2 * per_side);
        CHECK(g->max_inside.load() == 1);
        CHECK_FALSE(g->lock.biased());
        if (g->counter != 2 * per_side) break;
      }
      co_return;
    }(rounds, per_side));
  }

  TEST_CASE("two one-worker runtimes select over each other's biased channels") {
    spin_lock::reset_revocations();
    // Round after round, each runtime's main task makes a channel, biased to its thread, and
    // both sides then send and receive through selects over both channels. A select holds both
    // channels' locks at once while the other thread revokes, or is revoked by, one of them: no
    // deadlock (the watchdog), and every value arrives exactly once.
    const int rounds = 50;
    const long per_side = scaled(200);  // values each side sends per round
    struct shared {
      corio::sender<long> tx[2];
      corio::receiver<long> rx[2];
      std::atomic<int> made{0};
      std::atomic<long> received{0};
      std::atomic<long long> sum{0};
    } sh;
    auto side = [](int me, int rounds, long m, shared& sh) -> task<> {
      for (int r = 0; r < rounds; ++r) {
        // The other side copied the last round's channels: every value of it was received.
        auto [tx, rx] = corio::make_channel<long>(4);
        sh.tx[me] = std::move(tx);
        sh.rx[me] = std::move(rx);
        sh.made.fetch_add(1);
        while (sh.made.load() < 2 * (r + 1))
          co_await corio::sleep_for(std::chrono::microseconds(50));
        corio::sender<long> tx0 = sh.tx[0], tx1 = sh.tx[1];
        corio::receiver<long> rx0 = sh.rx[0], rx1 = sh.rx[1];
        long first = (2L * r + me) * m + 1;
        auto producer = corio::spawn(
            [](corio::sender<long> a, corio::sender<long> b, long first, long last) -> task<> {
              for (long v = first; v <= last; ++v) co_await corio::select(a.send(v), b.send(v));
            }(tx0, tx1, first, first + m - 1));
        while (sh.received.load() < 2 * m * (r + 1)) {
          auto got = co_await corio::select(rx0.recv(), rx1.recv(),
                                            corio::sleep_for(std::chrono::milliseconds(1)));
          long v = 0;
          if (got.index() == 0 && std::get<0>(got)) v = *std::get<0>(got);
          if (got.index() == 1 && std::get<1>(got)) v = *std::get<1>(got);
          if (v != 0) {
            sh.sum.fetch_add(v);
            sh.received.fetch_add(1);
          }
        }
        co_await producer;
      }
    };
    std::thread b([&] {
      corio::runtime rt{{.workers = 1}};
      rt.block_on(side(1, rounds, per_side, sh));
    });
    {
      corio::runtime rt{{.workers = 1}};
      rt.block_on(side(0, rounds, per_side, sh));
    }
    b.join();
    const long total = 2 * rounds * per_side;
    CHECK(sh.received.load() == total);
    CHECK(sh.sum.load() == static_cast<long long>(total) * (total + 1) / 2);
  }
}
