// run_queue under the model scheduler (model.hpp): the real lib/run_queue.hpp, instantiated with
// model::atomic and a capacity of 2 or 4, so that every load, store and CAS of head_, tail_ and
// the slots is a scheduling point.
//
// Invariant (run_queue.hpp I3), checked after every schedule: every pushed item is taken exactly
// once -- by the owner's pop, by the overflow (push of a full queue hands items to the global
// queue), by a thief's steal_into (the item it returns and those it moved into its own queue,
// which it then pops), or by the final drain once all threads are done. No take returns
// anything but a pushed item (garbage or a stale slot shows up as a duplicate or an unknown
// pointer), and the owner's pops come out in push order (FIFO, run_queue.hpp's header).
//
// The cases hit the boundaries on purpose: a capacity of 2 fills after two pushes, so pushes
// overflow while thieves claim or copy (push's steal != real branch and push_overflow's failed
// CAS), and indexes wrap around the buffer several times.
#include <doctest/doctest.h>

#include "../../lib/run_queue.hpp"
#include "model.hpp"

#include <array>
#include <memory>
#include <string>
#include <vector>

namespace {

using corio::model::config;
using corio::model::execution;
using corio::model::explore;
using corio::model::scaled;

constexpr int max_items = 16;

// The items, and who took each how often. Takes run in fibers, so they report with fail().
struct ledger {
  std::array<int, max_items> items{};
  std::array<int, max_items> taken{};
  std::array<bool, max_items> pushed{};
  int count = 0;
  int last_popped = -1;

  int* item(int i) noexcept { return &items[i]; }

  void take(int* p, const char* by) {
    if (p == nullptr) return;
    long i = p - items.data();
    if (i < 0 || i >= count) {
      corio::model::fail(std::string(by) + " returned a pointer that is no item");
      return;
    }
    if (!pushed[i]) corio::model::fail(std::string(by) + " returned an item not pushed yet");
    if (++taken[i] > 1) {
      corio::model::fail(std::string(by) + " returned item " + std::to_string(i) +
                         ", which was taken before");
    }
  }

  void owner_popped(int* p) {
    take(p, "the owner's pop");
    if (p == nullptr) return;
    int i = static_cast<int>(p - items.data());
    if (i <= last_popped) corio::model::fail("the owner's pops left push order");
    last_popped = i;
  }

  void check_all_taken() {
    for (int i = 0; i < count; ++i) {
      if (pushed[i] && taken[i] == 0) corio::model::fail("item " + std::to_string(i) + " was lost");
    }
  }
};

// One owner program step: push the next item, or pop.
enum class op { push, pop };

template <std::uint32_t Capacity>
struct scenario {
  using queue = corio::detail::run_queue<int*, Capacity, corio::model::atomic>;

  ledger book;
  queue owner_queue;
  std::vector<std::unique_ptr<queue>> thief_queues;

  // The owner runs `program`; each thief makes `steals` attempts on the owner's queue and pops
  // what it moved into its own after each.
  void build(execution& ex, std::vector<op> program, int thieves, int steals) {
    book.count = 0;
    for (op o : program) book.count += o == op::push;
    ex.thread([this, program] {
      int next = 0;
      for (op o : program) {
        if (o == op::push) {
          int i = next++;
          book.pushed[i] = true;
          owner_queue.push(book.item(i), [this](int** v, std::uint32_t n) {
            for (std::uint32_t k = 0; k < n; ++k) book.take(v[k], "the overflow");
          });
        } else {
          book.owner_popped(owner_queue.pop());
        }
      }
    });
    for (int t = 0; t < thieves; ++t) {
      thief_queues.push_back(std::make_unique<queue>());
      queue* mine = thief_queues.back().get();
      ex.thread([this, mine, steals] {
        for (int s = 0; s < steals; ++s) {
          book.take(owner_queue.steal_into(*mine), "steal_into");
          while (int* p = mine->pop()) book.take(p, "the thief's pop of stolen items");
        }
      });
    }
    ex.at_quiescence([this] {
      // Every thread is done: what is left must still be in the queues, exactly once.
      while (int* p = owner_queue.pop()) book.owner_popped(p);
      for (auto& q : thief_queues) {
        while (int* p = q->pop()) book.take(p, "the final drain of a thief's queue");
      }
      book.check_all_taken();
    });
  }
};

template <std::uint32_t Capacity>
corio::model::result run_case(const config& cfg, const std::vector<op>& program, int thieves,
                              int steals) {
  return explore(cfg, [&](execution& ex) {
    // Fresh state per schedule; it lives until the next setup replaces it.
    static std::unique_ptr<scenario<Capacity>> s;
    s = std::make_unique<scenario<Capacity>>();
    s->build(ex, program, thieves, steals);
  });
}

constexpr op P = op::push;
constexpr op O = op::pop;

}  // namespace

TEST_SUITE("run_queue model") {
  TEST_CASE("capacity 2 and one thief: all schedules within the bound conserve every item") {
    config cfg;
    cfg.name = "run_queue cap2 1 thief exhaustive";
    cfg.exhaustive = true;
    cfg.preemption_bound = corio::model::preemption_bound(3, 3);  // 7,300 schedules
    cfg.max_schedules = 2'000'000;
    // Three pushes into two slots overflow (while a steal runs, or by moving the older half).
    auto r = run_case<2>(cfg, {P, P, P, O, P, O}, 1, 2);
    CHECK_MESSAGE(r.failure.empty(), r.failure);
    if (r.failure.empty()) CHECK((r.exhausted || r.replay));
  }

  TEST_CASE("capacity 2 and two thieves: all schedules within the bound conserve every item") {
    config cfg;
    cfg.name = "run_queue cap2 2 thieves exhaustive";
    cfg.exhaustive = true;
    cfg.preemption_bound = corio::model::preemption_bound(3, 3);  // 60,000 schedules
    cfg.max_schedules = 2'000'000;
    auto r = run_case<2>(cfg, {P, P, P, O}, 2, 1);
    CHECK_MESSAGE(r.failure.empty(), r.failure);
    if (r.failure.empty()) CHECK((r.exhausted || r.replay));
  }

  TEST_CASE("capacity 4 and two thieves: random schedules conserve every item") {
    config cfg;
    cfg.name = "run_queue cap4 2 thieves random";
    cfg.max_schedules = scaled(100'000);
    cfg.seed = 1;
    cfg.spurious_cas_percent = 10;
    // Indexes wrap the 4 slots three times; pushes 5 and 10 find the queue full.
    auto r = run_case<4>(cfg, {P, P, P, P, P, O, P, P, O, P, P, P, O, O, P, P, O}, 2, 3);
    CHECK_MESSAGE(r.failure.empty(), r.failure);
  }

  TEST_CASE("capacity 2 and two thieves: random schedules conserve every item") {
    config cfg;
    cfg.name = "run_queue cap2 2 thieves random";
    cfg.max_schedules = scaled(100'000);
    cfg.seed = 1'000'000;
    cfg.spurious_cas_percent = 10;
    auto r = run_case<2>(cfg, {P, P, P, O, P, P, O, P, O, P}, 2, 3);
    CHECK_MESSAGE(r.failure.empty(), r.failure);
  }
}
