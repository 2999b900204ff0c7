// A deterministic scheduler for model-checking small concurrent algorithms (tests only).
//
// Method. The code under test runs in a few logical threads, each a fiber (ucontext) on the
// calling OS thread, so exactly one runs at a time and a run is a pure function of the choices
// the scheduler makes. Every operation on a model::atomic (and every model::mutex lock, and every
// wait) first calls yield(), a scheduling point where the scheduler decides which thread runs
// next. explore() runs the same test body under many such schedules and stops at the first one
// that violates an invariant, printing what is needed to replay it:
//   - exhaustive: a depth-first search over all choices, bounded by the number of preemptions
//     (switching away from a thread that could have continued; iterative context bounding, as
//     in CHESS and loom's LOOM_MAX_PREEMPTIONS). Switching when a thread blocks or ends is free.
//     A failure prints the schedule as a string of thread ids; CORIO_MODEL_SCHEDULE=<ids>
//     replays exactly that schedule.
//   - random: each schedule is drawn from a PRNG seeded with seed + i; a failure prints that
//     seed, and CORIO_MODEL_SEED=<seed> replays only it. Random mode may also make
//     compare_exchange_weak fail spuriously, as the standard allows.
// CORIO_MODEL_SCALE=<n> multiplies every random budget and CORIO_MODEL_DEEP=1 raises every
// preemption bound by one (the tier knobs of RELIABILITY.md).
//
// Limits. The interleavings explored are sequentially consistent: every atomic access takes
// effect at its scheduling point, whatever memory_order it names. Missing acquire/release
// pairings and fences are therefore invisible here; TSan and the stress tests
// (test/stress/run_queue_stress.cpp, scheduler_stress.cpp) cover weaker orders. What the model
// finds are logic races: lost items, duplicates, lost wake-ups, deadlocks, livelocks.
//
// A loop that only waits for another thread's progress calls spin() (see there). Threads block
// with wait_until(); when no thread can run the schedule is *quiescent*: the test's
// quiescence check runs, then stopping() becomes true and blocked threads are released so that
// they can leave their loops (the model's counterpart of a runtime's stop request). Model code
// running in a fiber must not throw (doctest's REQUIRE throws); it reports with fail().
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace corio::model {

struct config {
  const char* name = "model";
  bool exhaustive = false;
  int preemption_bound = 2;               // exhaustive only
  std::uint64_t max_schedules = 100'000;  // random: the count; exhaustive: a safety cap
  std::uint64_t seed = 1;                 // random only
  std::uint64_t max_steps = 20'000;       // scheduling points per schedule: more is a livelock
  unsigned spurious_cas_percent = 0;      // random only
};

struct result {
  std::uint64_t schedules = 0;
  std::uint64_t longest = 0;  // scheduling points in the longest schedule
  bool exhausted = false;     // exhaustive: every schedule within the bound ran
  bool replay = false;        // CORIO_MODEL_SEED or CORIO_MODEL_SCHEDULE: one schedule only
  std::string failure;        // empty when every schedule kept the invariants
};

/// What one schedule runs: the threads and the check at quiescence. Built afresh per schedule by
/// the setup function given to explore(), which also creates the shared state.
class execution {
 public:
  void thread(std::function<void()> body) { bodies_.push_back(std::move(body)); }
  void at_quiescence(std::function<void()> check) { check_ = std::move(check); }

 private:
  friend class engine;
  std::vector<std::function<void()>> bodies_;
  std::function<void()> check_;
};

result explore(const config& cfg, const std::function<void(execution&)>& setup);

/// Sanitizers or -O0 (.ci/run runs the unit suite in both): budgets shrink to stay in time.
bool slow_build() noexcept;
/// Schedule budgets are divided by 10 in a slow build and multiplied by CORIO_MODEL_SCALE.
std::uint64_t scaled(std::uint64_t n);
/// An exhaustive test's preemption bound: `fast` in optimised builds, `slow` in slow ones, one
/// more with CORIO_MODEL_DEEP=1 (for a nightly run; schedules grow about tenfold per step).
int preemption_bound(int fast, int slow);

/// A scheduling point; a no-op outside explore()'s fibers.
void yield() noexcept;
/// A scheduling point where the caller loops without progress until another thread acts (a
/// re-check that sees work it cannot take yet). Under a fair OS scheduler the others run
/// meanwhile; so here switching away is the default and costs no preemption, and letting the
/// spinner continue costs one. Without it a preemption-bounded search would follow the spinner
/// forever (CHESS's fairness problem; loom's yield_now plays the same part).
void spin() noexcept;
/// Blocks the calling thread until ready(arg) or stopping(). `is_lock` marks a mutex wait: a
/// quiescent schedule with a thread in one is a deadlock.
void wait_until(bool (*ready)(const void*), const void* arg, bool is_lock) noexcept;
template <class F>
void wait_until(const F& ready) noexcept {
  wait_until([](const void* p) { return (*static_cast<const F*>(p))(); }, &ready, false);
}
/// True once the schedule was quiescent and blocked threads were released.
bool stopping() noexcept;
/// Records a violated invariant (the first one counts); the schedule then runs to its end.
void fail(std::string message);
/// compare_exchange_weak asks this whether to fail spuriously.
bool spurious_failure() noexcept;
/// Index of the calling thread, -1 outside a fiber.
int current_thread() noexcept;

/// The subset of std::atomic that lib/run_queue.hpp and the park model use. Each access is one
/// scheduling point followed by the access itself; memory orders are accepted and ignored.
template <class T>
class atomic {
 public:
  atomic() noexcept = default;
  constexpr atomic(T v) noexcept : value_(v) {}  // NOLINT: mirrors std::atomic
  atomic(const atomic&) = delete;
  atomic& operator=(const atomic&) = delete;

  /// The value without a scheduling point: only for wait_until() predicates and quiescence
  /// checks, which the scheduler evaluates between steps.
  T peek() const noexcept { return value_; }
  T load(std::memory_order = std::memory_order_seq_cst) const noexcept {
    yield();
    return value_;
  }
  void store(T v, std::memory_order = std::memory_order_seq_cst) noexcept {
    yield();
    value_ = v;
  }
  T exchange(T v, std::memory_order = std::memory_order_seq_cst) noexcept {
    yield();
    T old = value_;
    value_ = v;
    return old;
  }
  bool compare_exchange_strong(T& expected, T desired,
                               std::memory_order = std::memory_order_seq_cst,
                               std::memory_order = std::memory_order_seq_cst) noexcept {
    yield();
    return cas(expected, desired);
  }
  bool compare_exchange_weak(T& expected, T desired, std::memory_order = std::memory_order_seq_cst,
                             std::memory_order = std::memory_order_seq_cst) noexcept {
    yield();
    if (spurious_failure()) {
      expected = value_;
      return false;
    }
    return cas(expected, desired);
  }
  T fetch_add(T d, std::memory_order = std::memory_order_seq_cst) noexcept {
    yield();
    T old = value_;
    value_ = static_cast<T>(old + d);
    return old;
  }
  T fetch_sub(T d, std::memory_order = std::memory_order_seq_cst) noexcept {
    yield();
    T old = value_;
    value_ = static_cast<T>(old - d);
    return old;
  }

 private:
  bool cas(T& expected, T desired) noexcept {
    if (value_ == expected) {
      value_ = desired;
      return true;
    }
    expected = value_;
    return false;
  }

  T value_{};
};

/// A mutex whose lock is a scheduling point and whose waiters block in the model scheduler.
class mutex {
 public:
  void lock() noexcept {
    for (;;) {
      yield();
      if (!locked_) {
        locked_ = true;
        return;
      }
      wait_until([](const void* p) { return !static_cast<const mutex*>(p)->locked_; }, this, true);
    }
  }
  void unlock() noexcept {
    yield();
    locked_ = false;
  }

 private:
  bool locked_ = false;
};

}  // namespace corio::model
