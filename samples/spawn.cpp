// Spawn and join (May's spawn example): a parent task spawns 100 children that each yield a few
// times and return a value; the parent joins them all and prints the sum.
//
//   spawn [--workers N] [--children N] [--yields N]     (Ctrl-C stops it cleanly)
//
// Children are root tasks: any worker may run them, and an idle worker steals them from a busy
// one (children this small often all finish before a second worker wakes up; more yields spread
// them). `co_await h` on a join handle gives the child's value (or rethrows its exception).
#include "common/cli.hpp"
#include "common/signals.hpp"

#include <corio/corio.hpp>

#include <fmt/format.h>

#include <set>
#include <thread>
#include <vector>

namespace {

struct child_result {
  long value;
  std::thread::id thread;  // where the child finished
};

corio::task<child_result> child(long i, long yields) {
  for (long y = 0; y < yields; ++y) co_await corio::yield_now();  // let the others run
  co_return child_result{i + 1, std::this_thread::get_id()};
}

corio::task<> parent(long children, long yields) {
  fmt::print("parent: spawning {} children\n", children);
  std::vector<corio::join_handle<child_result>> handles;
  handles.reserve(static_cast<std::size_t>(children));
  for (long i = 0; i < children; ++i) handles.push_back(corio::spawn(child(i, yields)));
  long sum = 0;
  std::set<std::thread::id> threads;
  for (auto& h : handles) {
    child_result r = co_await h;  // in spawn order; later children may have finished long ago
    sum += r.value;
    threads.insert(r.thread);
  }
  fmt::print("parent: joined {} children on {} thread(s)\n", children, threads.size());
  fmt::print("sum = {}\n", sum);
}

}  // namespace

int main(int argc, char** argv) {
  long children = 100;
  long yields = 3;
  auto cli = samples::parse(
      argc, argv, "spawn: a parent spawns children that yield, joins them and sums their values",
      {{"children", "children to spawn (default 100; child i returns i + 1)",
        [&](std::string_view v) {
          children = static_cast<long>(samples::number("children", v, 10'000'000));
        }},
       {"yields", "yields per child (default 3)", [&](std::string_view v) {
          yields = static_cast<long>(samples::number("yields", v, 1'000'000));
        }}});
  try {
    samples::stop_signals signals;
    corio::runtime rt{corio::runtime_options{.workers = cli.workers}};
    fmt::print("spawn: {} workers\n", rt.worker_count());
    rt.block_on(samples::run_until_signal(signals, parent(children, yields)));
    return 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "spawn: {}\n", e.what());
    return 1;
  }
}
