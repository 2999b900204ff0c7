// corio::completion_queue (May's cqueue): spawn jobs, take their results in the order they finish.
//
//   cqueue [--workers N] [--step-ms N]     (Ctrl-C stops it cleanly)
//
// Ten jobs, tagged 0..9, sleep different times (job t sleeps ((7 t) mod 10 + 1) steps of 25 ms,
// so the finishing order differs from the spawning order) and return how long they slept. The
// loop prints "tag -> value" for each as it finishes:
//
//     for (std::size_t t = 0; t < 10; ++t) q.spawn(job(t, step), t);
//     while (auto ev = co_await q.next()) fmt::print("{} -> {}\n", ev->tag, ev->value());
//
// next() returns std::nullopt once every job finished and its event was taken.
#include "common/cli.hpp"
#include "common/signals.hpp"

#include <corio/completion_queue.hpp>
#include <corio/corio.hpp>

#include <fmt/format.h>

#include <chrono>
#include <cstddef>

namespace {

// Returns the milliseconds it slept.
corio::task<int> job(std::size_t t, int step_ms) {
  int ms = static_cast<int>((7 * t) % 10 + 1) * step_ms;
  co_await corio::sleep_for(std::chrono::milliseconds(ms));
  co_return ms;
}

corio::task<> demo(int step_ms) {
  corio::completion_queue<int> q;
  for (std::size_t t = 0; t < 10; ++t) q.spawn(job(t, step_ms), t);
  fmt::print("10 jobs spawned; in completion order (tag -> ms slept):\n");
  while (auto ev = co_await q.next()) fmt::print("{} -> {}\n", ev->tag, ev->value());
  fmt::print("all jobs done\n");
}

}  // namespace

int main(int argc, char** argv) {
  int step_ms = 25;
  auto cli = samples::parse(
      argc, argv, "cqueue: a completion queue of 10 sleeping jobs, results in finishing order",
      {{"step-ms", "the sleep unit: job t sleeps ((7 t) mod 10 + 1) steps (default 25)",
        [&](std::string_view v) {
          step_ms = static_cast<int>(samples::number("step-ms", v, 60'000));
        }}});
  try {
    samples::stop_signals signals;
    corio::runtime rt{corio::runtime_options{.workers = cli.workers}};
    fmt::print("cqueue: {} workers\n", rt.worker_count());
    rt.block_on(samples::run_until_signal(signals, demo(step_ms)));
    return 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "cqueue: {}\n", e.what());
    return 1;
  }
}
