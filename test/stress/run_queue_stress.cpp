// T24: the work-stealing queue conserves items under real concurrency.
// Invariant: every pushed item is consumed exactly once -- popped by the owner, stolen by a thief
// (and then popped from the thief's own queue), or sent to the overflow -- with no duplicates and
// no losses, across many wrap-arounds of the indices and the full and empty boundaries.
#include <doctest/doctest.h>

#include "../../lib/run_queue.hpp"
#include "../support/invariants.hpp"

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

using corio::detail::run_queue;

namespace {

template <std::uint32_t Cap>
void conserve(long total, int thieves) {
  using queue = run_queue<long*, Cap>;
  std::vector<long> slots(total);
  for (long i = 0; i < total; ++i) slots[i] = i;
  std::unique_ptr<std::atomic<int>[]> seen(new std::atomic<int>[total]);
  for (long i = 0; i < total; ++i) seen[i].store(0);
  auto take = [&](long* p) { seen[*p].fetch_add(1, std::memory_order_relaxed); };

  queue owner;
  std::atomic<bool> done{false};
  std::mutex overflow_mutex;
  std::vector<long*> overflow;

  std::vector<std::thread> ts;
  for (int t = 0; t < thieves; ++t) {
    ts.emplace_back([&] {
      queue mine;
      while (!done.load(std::memory_order_acquire) || owner.approx_len() != 0) {
        if (long* p = owner.steal_into(mine)) {
          take(p);
          while (long* q = mine.pop()) take(q);
        } else {
          std::this_thread::yield();
        }
      }
    });
  }
  auto spill = [&](long** v, std::uint32_t n) {
    std::lock_guard lock(overflow_mutex);
    overflow.insert(overflow.end(), v, v + n);
  };
  for (long i = 0; i < total; ++i) {
    owner.push(&slots[i], spill);
    if (i % 3 == 0) {
      if (long* p = owner.pop()) take(p);
    }
  }
  while (long* p = owner.pop()) take(p);
  done.store(true, std::memory_order_release);
  for (auto& t : ts) t.join();
  for (long* p : overflow) take(p);

  long missing = 0, duplicated = 0;
  for (long i = 0; i < total; ++i) {
    int n = seen[i].load();
    if (n == 0) ++missing;
    if (n > 1) ++duplicated;
  }
  CHECK(missing == 0);
  CHECK(duplicated == 0);
}

}  // namespace

TEST_SUITE("run_queue_stress") {
  TEST_CASE("capacity 8, owner plus 3 thieves on 2 cores: every item exactly once") {
    conserve<8>(corio::test::scaled(2'000'000), 3);
  }
  TEST_CASE("capacity 2, owner plus 2 thieves: every item exactly once") {
    conserve<2>(corio::test::scaled(500'000), 2);
  }
  TEST_CASE("capacity 256, owner plus 1 thief: every item exactly once") {
    conserve<256>(corio::test::scaled(2'000'000), 1);
  }
}
