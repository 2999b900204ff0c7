// run_queue, single-threaded semantics (the races are in test/stress/run_queue_stress.cpp).
// Invariant: FIFO for the owner; overflow moves the older half plus the new item out; a steal
// takes half (rounded up) of the oldest items.
#include <doctest/doctest.h>

#include "../../lib/run_queue.hpp"

#include <vector>

using corio::detail::run_queue;

namespace {
std::vector<int> items(64);
int* item(int i) {
  return &items[i];
}
}  // namespace

TEST_SUITE("run_queue") {
  TEST_CASE("the owner pops in FIFO order") {
    run_queue<int*, 8> q;
    auto no_overflow = [](int**, std::uint32_t) { FAIL("unexpected overflow"); };
    for (int i = 0; i < 5; ++i) q.push(item(i), no_overflow);
    CHECK(q.approx_len() == 5);
    for (int i = 0; i < 5; ++i) CHECK(q.pop() == item(i));
    CHECK(q.pop() == nullptr);
    // Indices wrap around the buffer many times.
    for (int round = 0; round < 100; ++round) {
      q.push(item(round % 64), no_overflow);
      CHECK(q.pop() == item(round % 64));
    }
  }

  TEST_CASE(
      "pop_unstolen takes the same items in the same order as pop, and overflow still works") {
    // One worker's queue: pops without the CAS, interleaved with pushes that wrap the buffer and
    // with overflows (which CAS head_ themselves), against a plain FIFO model.
    run_queue<int*, 8> q;
    std::vector<int*> model;
    std::size_t front = 0;
    auto overflow = [&](int** v, std::uint32_t n) {
      // The older half and the new item leave the queue: drop them from the model's front. With
      // no thief, never the new item alone (that is for a queue a steal has not released yet).
      CHECK(n == 5);
      for (std::uint32_t i = 0; i + 1 < n; ++i) {
        REQUIRE(front < model.size());
        CHECK(v[i] == model[front++]);
      }
      CHECK(v[n - 1] == model.back());
      model.pop_back();
    };
    unsigned seed = 7;
    int next = 0;
    for (int step = 0; step < 2000; ++step) {
      seed = seed * 1103515245u + 12345u;
      if ((seed >> 16) % 3 != 0) {
        model.push_back(item(next++ % 64));
        q.push(model.back(), overflow);
      } else if (front < model.size()) {
        CHECK(q.pop_unstolen() == model[front++]);
      } else {
        CHECK(q.pop_unstolen() == nullptr);
      }
      CHECK(q.approx_len() == model.size() - front);
    }
    while (front < model.size()) CHECK(q.pop_unstolen() == model[front++]);
    CHECK(q.pop_unstolen() == nullptr);
    CHECK(q.pop() == nullptr);
  }

  TEST_CASE("a full queue sends the older half and the new item to the overflow") {
    run_queue<int*, 8> q;
    std::vector<int*> spilled;
    auto overflow = [&](int** v, std::uint32_t n) { spilled.insert(spilled.end(), v, v + n); };
    for (int i = 0; i < 8; ++i) q.push(item(i), overflow);
    CHECK(spilled.empty());
    q.push(item(8), overflow);
    REQUIRE(spilled.size() == 5);
    for (int i = 0; i < 4; ++i) CHECK(spilled[i] == item(i));
    CHECK(spilled[4] == item(8));
    for (int i = 4; i < 8; ++i) CHECK(q.pop() == item(i));
    CHECK(q.pop() == nullptr);
  }

  TEST_CASE("a thief takes half, rounded up, of the oldest items and returns the last of them") {
    run_queue<int*, 8> victim, thief;
    auto none = [](int**, std::uint32_t) {};
    for (int i = 0; i < 5; ++i) victim.push(item(i), none);
    int* got = victim.steal_into(thief);
    CHECK(got == item(2));  // 3 stolen: 0 and 1 land in the thief's queue, 2 is returned
    CHECK(thief.approx_len() == 2);
    CHECK(thief.pop() == item(0));
    CHECK(thief.pop() == item(1));
    CHECK(victim.approx_len() == 2);
    CHECK(victim.pop() == item(3));
    CHECK(victim.pop() == item(4));
    CHECK(victim.steal_into(thief) == nullptr);
  }

  TEST_CASE("a single item can be stolen") {
    run_queue<int*, 4> victim, thief;
    victim.push(item(1), [](int**, std::uint32_t) {});
    CHECK(victim.steal_into(thief) == item(1));
    CHECK(thief.approx_len() == 0);
    CHECK(victim.pop() == nullptr);
  }
}
