// timer_heap (lib/timer_heap.hpp) and timer_queue (lib/timer_queue.hpp: the heap and the far
// timers' wheel), single-threaded, against a sorted model.
// Invariants: pop_expired yields nodes in deadline order and only those due; remove takes out
// exactly the node named, from any position; every queued node's heap_index names its entry,
// and a node out of the heap has heap_index == not_queued; clear runs each drop hook once.
// timer_queue: after advance(now), every node due by `now` comes out of pop_expired, and
// earliest() is never later than the earliest deadline queued (a worker sleeping until then
// misses none).
#include <doctest/doctest.h>

#include "../../lib/timer_heap.hpp"
#include "../../lib/timer_queue.hpp"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <random>
#include <set>
#include <utility>
#include <vector>

using corio::detail::timer_heap;
using corio::detail::timer_node;
using corio::detail::timer_queue;
using corio::detail::timer_wheel;

namespace {

// The model: (deadline, node) in order; equal deadlines may leave the heap in either order.
using model = std::multiset<std::pair<std::int64_t, timer_node*>>;

std::vector<std::unique_ptr<timer_node>> make_nodes(std::size_t n) {
  std::vector<std::unique_ptr<timer_node>> v;
  for (std::size_t i = 0; i < n; ++i) v.push_back(std::make_unique<timer_node>());
  return v;
}

// Pops everything due at `now` from a timer_heap or a timer_queue and checks it against the
// model: only due nodes, in deadline order, each unlinked, and the same count left.
template <class Timers>
void pop_due(Timers& q, model& m, std::int64_t now) {
  std::int64_t last = INT64_MIN;
  while (timer_node* t = q.pop_expired(now)) {
    REQUIRE(t->deadline_ns <= now);
    REQUIRE(t->deadline_ns >= last);  // in deadline order
    REQUIRE(t->heap_index == timer_node::not_queued);
    last = t->deadline_ns;
    auto it = m.find({t->deadline_ns, t});
    REQUIRE(it != m.end());
    m.erase(it);
  }
  REQUIRE(q.size() == m.size());
}

// The heap's earliest() is exactly the model's first deadline.
void pop_and_check(timer_heap& h, model& m, std::int64_t now) {
  pop_due(h, m, now);
  if (!m.empty()) {
    CHECK(h.earliest() == m.begin()->first);
    CHECK(m.begin()->first > now);
  }
}

// timer_queue's version: advance first, then the same checks; earliest() may be earlier than
// the model's first deadline (a wheel slot's start), never later, and is after `now`.
void advance_pop_and_check(timer_queue& q, model& m, std::int64_t now) {
  q.advance(now);
  pop_due(q, m, now);
  REQUIRE(q.empty() == m.empty());
  if (!m.empty()) {
    REQUIRE(m.begin()->first > now);
    REQUIRE(q.earliest() <= m.begin()->first);
    REQUIRE(q.earliest() > now);
  }
}

// Hooks whose drop counts the nodes it sees, each of which must already be unlinked.
int dropped = 0;
constexpr corio::detail::timer_hooks counting_hooks{
    [](timer_node*, corio::detail::worker&) noexcept {},
    [](timer_node* t) noexcept {
      CHECK(t->heap_index == timer_node::not_queued);
      ++dropped;
    }};

constexpr std::int64_t ms = 1'000'000;
constexpr std::int64_t sec = 1'000 * ms;

}  // namespace

TEST_SUITE("timer_heap") {
  TEST_CASE("pop_expired returns only the nodes due, earliest first") {
    auto nodes = make_nodes(5);
    timer_heap h;
    std::int64_t deadlines[] = {50, 10, 40, 20, 30};
    for (std::size_t i = 0; i < 5; ++i) {
      nodes[i]->deadline_ns = deadlines[i];
      h.insert(nodes[i].get());
    }
    CHECK(h.earliest() == 10);
    CHECK(h.pop_expired(9) == nullptr);
    CHECK(h.pop_expired(25) == nodes[1].get());
    CHECK(h.pop_expired(25) == nodes[3].get());
    CHECK(h.pop_expired(25) == nullptr);
    CHECK(h.size() == 3);
    CHECK(h.earliest() == 30);
  }

  TEST_CASE("removal from any position keeps the order of the rest") {
    // Every position of a heap of 1..40 nodes (four levels of a 4-ary heap), each removed once.
    for (std::size_t n = 1; n <= 40; ++n) {
      for (std::size_t victim = 0; victim < n; ++victim) {
        auto nodes = make_nodes(n);
        timer_heap h;
        model m;
        std::mt19937 rng(static_cast<unsigned>(n * 100 + victim));
        for (auto& t : nodes) {
          t->deadline_ns = static_cast<std::int64_t>(rng() % 64);
          h.insert(t.get());
          m.insert({t->deadline_ns, t.get()});
        }
        timer_node* v = nodes[victim].get();
        REQUIRE(v->heap_index < n);
        h.remove(v);
        CHECK(v->heap_index == timer_node::not_queued);
        m.erase(m.find({v->deadline_ns, v}));
        pop_and_check(h, m, INT64_MAX);
        CHECK(h.empty());
      }
    }
  }

  TEST_CASE("random inserts, removals and expiries agree with a sorted model") {
    auto nodes = make_nodes(2000);
    timer_heap h;
    model m;
    std::mt19937_64 rng(2026);
    std::int64_t now = 0;
    for (int step = 0; step < 200'000; ++step) {
      timer_node* t = nodes[rng() % nodes.size()].get();
      bool queued = t->heap_index != timer_node::not_queued;
      switch (rng() % 8) {
        case 0:
        case 1:
        case 2:
          if (!queued) {
            // Mostly in order (like sleeps and read timeouts started one after another),
            // sometimes earlier than everything queued.
            t->deadline_ns =
                now + static_cast<std::int64_t>(rng() % 4 == 0 ? rng() % 10 : 1000 + rng() % 1000);
            h.insert(t);
            m.insert({t->deadline_ns, t});
          }
          break;
        case 3:
        case 4:
          if (queued) {
            h.remove(t);
            m.erase(m.find({t->deadline_ns, t}));
          }
          break;
        default:
          now += static_cast<std::int64_t>(rng() % 50);
          pop_and_check(h, m, now);
      }
    }
    // Every node the model holds is where its index says.
    for (auto& [deadline, t] : m) {
      REQUIRE(t->heap_index < h.size());
      CHECK(t->deadline_ns == deadline);
    }
    pop_and_check(h, m, INT64_MAX);
    CHECK(h.empty());
  }

  TEST_CASE("clear unlinks every node and runs each drop hook once") {
    dropped = 0;
    auto nodes = make_nodes(100);
    timer_heap h;
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      nodes[i]->deadline_ns = static_cast<std::int64_t>(nodes.size() - i);
      if (i % 2 == 0) nodes[i]->hooks = &counting_hooks;
      h.insert(nodes[i].get());
    }
    h.clear();
    CHECK(h.empty());
    CHECK(dropped == 50);
    for (auto& t : nodes) CHECK(t->heap_index == timer_node::not_queued);
  }
}

TEST_SUITE("timer_queue") {
  TEST_CASE("far deadlines wait in the wheel and fire at their exact time") {
    auto nodes = make_nodes(3);
    timer_queue q;
    const std::int64_t start = 1000 * sec;
    nodes[0]->deadline_ns = start + 5 * ms;    // near: the heap
    nodes[1]->deadline_ns = start + 10 * sec;  // far: the wheel
    nodes[2]->deadline_ns = start + 10 * sec + 1;
    for (auto& t : nodes) q.insert(t.get(), start);
    CHECK(q.heap().size() == 1);
    CHECK(q.wheel().size() == 2);
    CHECK((nodes[1]->heap_index & timer_wheel::in_wheel) != 0);
    // Removing the first wheel node moves the other into its place.
    q.remove(nodes[1].get());
    CHECK(nodes[1]->heap_index == timer_node::not_queued);
    CHECK(nodes[2]->heap_index == (timer_wheel::in_wheel | 0u));
    q.advance(start + 5 * ms);
    CHECK(q.pop_expired(start + 5 * ms) == nodes[0].get());
    // The worker sleeps until earliest(): at most until the far node's slot starts, when it
    // moves to the heap, then until its deadline.
    std::int64_t wake = q.earliest();
    CHECK(wake <= nodes[2]->deadline_ns);
    CHECK(wake > nodes[2]->deadline_ns - 2 * (std::int64_t{1} << timer_wheel::shift));
    q.advance(wake);
    CHECK(q.wheel().empty());
    CHECK(q.pop_expired(wake) == nullptr);
    CHECK(q.earliest() == nodes[2]->deadline_ns);
    q.advance(nodes[2]->deadline_ns);
    CHECK(q.pop_expired(nodes[2]->deadline_ns) == nodes[2].get());
    CHECK(q.empty());
  }

  TEST_CASE("random inserts, removals, sleeps and jumps agree with a sorted model") {
    auto nodes = make_nodes(3000);
    timer_queue q;
    model m;
    std::mt19937_64 rng(20261206);
    std::int64_t now = 7 * sec + 12345;
    std::size_t in_wheel_seen = 0;
    for (int step = 0; step < 300'000; ++step) {
      timer_node* t = nodes[rng() % nodes.size()].get();
      bool queued = t->heap_index != timer_node::not_queued;
      switch (rng() % 10) {
        case 0:
        case 1:
        case 2:
        case 3:
          if (!queued) {
            // Near sleeps, read timeouts of seconds, and deadlines beyond the wheel's turn;
            // the clock reading the queue gets may be late (the worker's last poll).
            std::int64_t d = 0;
            switch (rng() % 4) {
              case 0:
                d = static_cast<std::int64_t>(rng() % (2 * ms));
                break;
              case 1:
                d = 10 * ms + static_cast<std::int64_t>(rng() % (500 * ms));
                break;
              case 2:
                d = sec + static_cast<std::int64_t>(rng() % (60 * sec));
                break;
              default:
                d = 60 * sec + static_cast<std::int64_t>(rng() % (200 * sec));
                break;
            }
            t->deadline_ns = now + d;
            q.insert(t, now - static_cast<std::int64_t>(rng() % (200 * ms)));
            m.insert({t->deadline_ns, t});
            if (t->heap_index & timer_wheel::in_wheel) ++in_wheel_seen;
          }
          break;
        case 4:
        case 5:
          if (queued) {
            q.remove(t);
            REQUIRE(t->heap_index == timer_node::not_queued);
            m.erase(m.find({t->deadline_ns, t}));
          }
          break;
        case 6:
          // The worker parks until earliest() (or wakes before it).
          if (!q.empty()) now = std::max(now, q.earliest() - static_cast<std::int64_t>(rng() % 2));
          advance_pop_and_check(q, m, now);
          break;
        case 7:
          now += static_cast<std::int64_t>(rng() % (100 * sec));  // a long stall
          advance_pop_and_check(q, m, now);
          break;
        default:
          now += static_cast<std::int64_t>(rng() % (300 * ms));
          advance_pop_and_check(q, m, now);
      }
    }
    CHECK(in_wheel_seen > 10'000);
    for (auto& [deadline, t] : m) {
      REQUIRE(t->heap_index != timer_node::not_queued);
      CHECK(t->deadline_ns == deadline);
    }
    advance_pop_and_check(q, m, INT64_MAX / 2);
    CHECK(q.empty());
  }

  TEST_CASE("clear unlinks heap and wheel nodes and runs each drop hook once") {
    dropped = 0;
    auto nodes = make_nodes(100);
    timer_queue q;
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      // Half near (the heap), half 5 s ahead (the wheel); every other node has hooks.
      nodes[i]->deadline_ns = static_cast<std::int64_t>(i % 2 ? 5 * sec + i : i);
      nodes[i]->hooks = i % 4 < 2 ? &counting_hooks : nullptr;
      q.insert(nodes[i].get(), 0);
    }
    CHECK(q.wheel().size() == 50);
    q.clear();
    CHECK(q.empty());
    CHECK(dropped == 50);
    for (auto& t : nodes) CHECK(t->heap_index == timer_node::not_queued);
  }
}
