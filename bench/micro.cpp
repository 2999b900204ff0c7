// corio micro benchmarks: the cost of the runtime's basic operations, in ns per operation.
//
//   micro [--workers N] [--reps R] [--only NAME] [--no-recycling]
//
// Each benchmark runs R times (after one warm-up run) inside one block_on and prints
// "name workers=N median_ns min_ns max_ns". Pin the process with taskset for stable figures;
// bench/run.sh does that and puts the figures beside the reference peers of ../shared/bench.
#include <corio/corio.hpp>
#include <corio/detail/diagnostics.hpp>
#include <corio/detail/frame_alloc.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

using corio::task;
using clk = std::chrono::steady_clock;

namespace {

struct bench {
  const char* name;
  long ops;  // operations per run
  std::function<task<>(long)> body;
};

task<> leaf() {
  co_return;
}

// co_await of a child task that completes at once: frame allocation + two symmetric transfers.
task<> task_await(long n) {
  for (long i = 0; i < n; ++i) co_await leaf();
}

// spawn one task and join it, one at a time (Go: `go f()` + WaitGroup, one at a time).
task<> spawn_join_one(long n) {
  for (long i = 0; i < n; ++i) co_await corio::spawn(leaf());
}

// spawn 1000 tasks, then join them all; per task (Go: spawn 1000, then join).
task<> spawn_join_batch(long n) {
  std::vector<corio::join_handle<void>> hs;
  hs.reserve(1000);
  for (long done = 0; done < n; done += 1000) {
    for (int i = 0; i < 1000; ++i) hs.push_back(corio::spawn(leaf()));
    for (auto& h : hs) co_await h;
    hs.clear();
  }
}

// yield_now with nothing else runnable: the scheduler round trip (Go: Gosched alone).
task<> yield_alone(long n) {
  for (long i = 0; i < n; ++i) co_await corio::yield_now();
}

// two tasks yielding alternately; per yield (Go: two goroutines Gosched in turn).
task<> yield_pair(long n) {
  auto other = corio::spawn([](long n) -> task<> {
    for (long i = 0; i < n / 2; ++i) co_await corio::yield_now();
  }(n));
  for (long i = 0; i < n / 2; ++i) co_await corio::yield_now();
  co_await other;
}

// one IORING_OP_NOP at a time through the framework: prepare, submit+wait, reap, resume.
task<> nop_single(long n) {
  for (long i = 0; i < n; ++i) co_await corio::detail::nop();
}

// 32 tasks doing NOPs at once: the worker batches their SQEs into one submit; per NOP.
task<> nop_batch32(long n) {
  std::vector<corio::join_handle<void>> hs;
  for (int t = 0; t < 32; ++t) {
    hs.push_back(corio::spawn([](long n) -> task<> {
      for (long i = 0; i < n; ++i) co_await corio::detail::nop();
    }(n / 32)));
  }
  for (auto& h : hs) co_await h;
}

// 1000 tasks each sleeping 100 us, n/1000 times: timer arm + expiry + resume; per sleep. The
// sleeps themselves overlap, so this measures CPU per timer, not the sleep length.
task<> sleep_fire(long n) {
  std::vector<corio::join_handle<void>> hs;
  for (int t = 0; t < 1000; ++t) {
    hs.push_back(corio::spawn([](long n) -> task<> {
      for (long i = 0; i < n; ++i) co_await corio::sleep_for(std::chrono::microseconds(100));
    }(n / 1000)));
  }
  for (auto& h : hs) co_await h;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t workers = 1;
  int reps = 7;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--workers" && i + 1 < argc) {
      workers = std::strtoul(argv[++i], nullptr, 10);
    } else if (a == "--reps" && i + 1 < argc) {
      reps = std::atoi(argv[++i]);
    } else if (a == "--only" && i + 1 < argc) {
      only = argv[++i];
    } else if (a == "--no-recycling") {
      corio::detail::set_frame_recycling(false);
    } else {
      fmt::print(stderr, "usage: micro [--workers N] [--reps R] [--only NAME] [--no-recycling]\n");
      return 2;
    }
  }
  std::vector<bench> all = {
      {"task_await", 2'000'000, task_await},           {"spawn_join_one", 200'000, spawn_join_one},
      {"spawn_join_batch", 500'000, spawn_join_batch}, {"yield_alone", 2'000'000, yield_alone},
      {"yield_pair", 2'000'000, yield_pair},           {"nop_single", 100'000, nop_single},
      {"nop_batch32", 640'000, nop_batch32},           {"sleep_fire", 200'000, sleep_fire},
  };
  corio::runtime rt{corio::runtime_options{.workers = workers}};
  for (auto& b : all) {
    if (!only.empty() && only != b.name) continue;
    // All repetitions run inside one session, so thread and ring start-up is not measured.
    std::vector<double> ns = rt.block_on([](bench& b, int reps) -> task<std::vector<double>> {
      std::vector<double> out;
      for (int r = 0; r <= reps; ++r) {
        auto t0 = clk::now();
        co_await b.body(b.ops);
        double per = std::chrono::duration<double, std::nano>(clk::now() - t0).count() / b.ops;
        if (r > 0) out.push_back(per);  // run 0 warms caches and the frame allocator
      }
      co_return out;
    }(b, reps));
    std::sort(ns.begin(), ns.end());
    fmt::print("{} workers={} {:.1f} {:.1f} {:.1f}\n", b.name, workers, ns[ns.size() / 2],
               ns.front(), ns.back());
    std::fflush(stdout);
  }
}
