// A runtime demo: spawns many tasks across the workers -- a fork-join tree, a crowd of sleepers and
// a ring round trip per task -- and prints the runtime's counters after each round.
//
//   spawn_demo [--workers N] [--tasks N] [--rounds N]     (Ctrl-C stops it cleanly)
#include "common/cli.hpp"
#include "common/signals.hpp"

#include <corio/corio.hpp>
#include <corio/detail/diagnostics.hpp>

#include <fmt/format.h>

#include <chrono>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

// Fork-join: the left half is spawned (and may be stolen), the right half is awaited inline.
corio::task<long> tree_sum(long lo, long hi) {
  if (hi - lo <= 64) {
    long s = 0;
    for (long i = lo; i < hi; ++i) s += i;
    co_return s;
  }
  long mid = lo + (hi - lo) / 2;
  auto left = corio::spawn(tree_sum(lo, mid));
  long right = co_await tree_sum(mid, hi);
  co_return right + co_await left;
}

corio::task<int> sleeper(int i) {
  co_await corio::sleep_for(std::chrono::milliseconds(1 + i % 20));
  auto trip = co_await corio::detail::nop();  // one io_uring round trip on this worker's ring
  co_return trip.reap_worker;
}

corio::task<> demo(long tasks, long rounds) {
  for (long r = 1; r <= rounds; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    long sum = co_await tree_sum(0, tasks * 64);
    std::vector<corio::join_handle<int>> sleepers;
    for (int i = 0; i < 1000; ++i) sleepers.push_back(corio::spawn(sleeper(i)));
    std::vector<long> per_worker(64);
    for (auto& h : sleepers) ++per_worker[static_cast<std::size_t>(co_await h) % 64];
    double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    fmt::print(
        "round {}: fork-join tree over {} leaves summed to {}, 1000 sleepers woke; {:.1f} ms\n", r,
        tasks, sum, ms);
  }
}

}  // namespace

int main(int argc, char** argv) {
  long tasks = 100'000;
  long rounds = 5;
  auto cli = samples::parse(
      argc, argv, "spawn_demo: spawn many tasks across the workers and print the runtime's stats",
      {{"tasks", "leaf tasks of the fork-join tree per round",
        [&](std::string_view v) {
          tasks = static_cast<long>(samples::number("tasks", v, 100'000'000));
        }},
       {"rounds", "rounds to run", [&](std::string_view v) {
          rounds = static_cast<long>(samples::number("rounds", v, 1'000'000));
        }}});
  try {
    samples::stop_signals signals;  // Ctrl-C cancels the rounds; the stats are still printed
    corio::runtime rt{corio::runtime_options{.workers = cli.workers}};
    fmt::print("corio demo: {} workers\n", rt.worker_count());
    rt.block_on(samples::run_until_signal(signals, demo(tasks, rounds)));
    corio::runtime_stats s = rt.stats();
    fmt::print("stats: {}\n", s);
    for (std::size_t i = 0; i < s.workers.size(); ++i) {
      const auto& w = s.workers[i];
      fmt::print("  worker {}: polled {} steals {} (tasks {}) global {} parks {} sqes {} cqes {}\n",
                 i, w.tasks_polled, w.steals, w.tasks_stolen, w.global_pops, w.parks,
                 w.sqes_submitted, w.cqes_reaped);
    }
    return 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "spawn_demo: {}\n", e.what());
    return 1;
  }
}
