// corio micro benchmarks: the cost of the runtime's basic operations, in ns per operation.
//
//   micro [--workers N] [--reps R] [--only NAME] [--no-recycling] [--list]
//
// Each benchmark runs R times (after one warm-up run) inside one block_on and prints
// "name workers=N median_ns min_ns max_ns". Pin the process with taskset for stable figures;
// bench/run.sh does that and puts the figures beside the reference peers of ../shared/bench.
// --list prints "name operations_per_run" for each benchmark (bench/micro_instructions.sh).
// foreign_lock runs only when named by --only (see there).
#include <corio/channel.hpp>
#include <corio/corio.hpp>
#include <corio/detail/diagnostics.hpp>
#include <corio/detail/frame_alloc.hpp>
#include <corio/detail/wait_list.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using corio::task;
using clk = std::chrono::steady_clock;

namespace {

struct bench {
  const char* name;
  long ops;  // operations per run
  std::function<task<>(long)> body;
  /// Runs only when named by --only, and --list leaves it out: it needs two free CPUs and
  /// measures a system call, not an instruction path (foreign_lock).
  bool opt_in = false;
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

// Sends back every value it receives, until `in` closes.
task<> echo_back(corio::receiver<int> in, corio::sender<int> out) {
  while (auto v = co_await in.recv()) co_await out.send(*v);
}

// A round trip over two rendezvous channels (capacity 0) between two tasks (Go: chan_pingpong,
// two unbuffered channels); per round trip.
task<> chan_pingpong(long n) {
  auto [a_tx, a_rx] = corio::make_channel<int>(0);
  auto [b_tx, b_rx] = corio::make_channel<int>(0);
  auto peer = corio::spawn(echo_back(std::move(a_rx), std::move(b_tx)));
  for (long i = 0; i < n; ++i) {
    co_await a_tx.send(static_cast<int>(i));
    (void)co_await b_rx.recv();
  }
  a_tx.close();
  co_await peer;
}

task<> drain(corio::receiver<long> rx) {
  // Not `while (co_await rx.recv())`: GCC 12 miscompiles a co_await used directly as an if or
  // while condition (the coroutine never runs its body); a condition that declares is fine.
  while (auto v = co_await rx.recv()) {
  }
}

// One producer, one consumer, a bounded channel of `capacity`; per value (Go: a buffered chan).
task<> chan_stream(long n, std::size_t capacity) {
  auto [tx, rx] = corio::make_channel<long>(capacity);
  auto consumer = corio::spawn(drain(std::move(rx)));
  for (long i = 0; i < n; ++i) co_await tx.send(i);
  tx.close();
  co_await consumer;
}

task<> lock_loop(corio::mutex* m, long* counter, long n) {
  for (long i = 0; i < n; ++i) {
    auto g = co_await m->lock();
    ++*counter;
  }
}

// 4 tasks each locking one corio::mutex, incrementing a counter and unlocking; per lock/unlock
// (Go: sync.Mutex, 4 goroutines). With 1 worker a task never suspends while holding the lock, so
// the others rarely find it taken; with 2 workers they contend, and each contended unlock hands
// the mutex to the longest waiter (fair), which must be scheduled before anyone goes on.
task<> mutex_contention(long n) {
  constexpr int tasks = 4;
  corio::mutex m;
  long counter = 0;
  std::vector<corio::join_handle<void>> hs;
  for (int t = 0; t < tasks; ++t) hs.push_back(corio::spawn(lock_loop(&m, &counter, n / tasks)));
  for (auto& h : hs) co_await h;
  if (counter != n / tasks * tasks) throw std::runtime_error("mutex_contention: lost an update");
}

// Opt-in (--only foreign_lock, unpinned, on an otherwise idle machine with two CPUs or more).
// A plain thread takes and releases, once each, n mutexes that the task made, while the worker's
// thread keeps running (it spins); per mutex, with the mutexes' construction and the thread's
// start spread over the run. With one worker each first lock revokes the mutex's bias to the
// worker's thread: a membarrier, which must interrupt the running worker (spin_lock in
// detail/wait_list.hpp). With two workers there is no bias, and this is a plain lock.
task<> foreign_lock(long n) {
  // Each run stays under the limit after which new locks are not biased.
  corio::detail::spin_lock::reset_revocations();
  auto ms = std::make_unique<corio::mutex[]>(static_cast<std::size_t>(n));
  std::atomic<bool> done{false};
  std::thread th([&ms, &done, n] {
    for (long i = 0; i < n; ++i) auto g = ms[i].lock_blocking();
    done.store(true, std::memory_order_release);
  });
  while (!done.load(std::memory_order_acquire)) {
  }
  th.join();
  co_return;
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t workers = 1;
  int reps = 7;
  std::string only;
  bool list = false;
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
    } else if (a == "--list") {
      list = true;
    } else {
      fmt::print(stderr,
                 "usage: micro [--workers N] [--reps R] [--only NAME] [--no-recycling] [--list]\n"
                 "  --list: print each benchmark's name and operations per run, run nothing\n");
      return 2;
    }
  }
  std::vector<bench> all = {
      {"task_await", 2'000'000, task_await},
      {"spawn_join_one", 200'000, spawn_join_one},
      {"spawn_join_batch", 500'000, spawn_join_batch},
      {"yield_alone", 2'000'000, yield_alone},
      {"yield_pair", 2'000'000, yield_pair},
      {"nop_single", 100'000, nop_single},
      {"nop_batch32", 640'000, nop_batch32},
      {"sleep_fire", 200'000, sleep_fire},
      {"chan_pingpong", 200'000, chan_pingpong},
      {"chan_stream64", 2'000'000, [](long n) { return chan_stream(n, 64); }},
      {"chan_stream1024", 2'000'000, [](long n) { return chan_stream(n, 1024); }},
      {"mutex_contention", 400'000, mutex_contention},
      {"foreign_lock", 200, foreign_lock, true},
  };
  if (list) {
    for (auto& b : all) {
      if (!b.opt_in) fmt::print("{} {}\n", b.name, b.ops);
    }
    return 0;
  }
  corio::runtime rt{corio::runtime_options{.workers = workers}};
  for (auto& b : all) {
    if (only.empty() ? b.opt_in : only != b.name) continue;
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
