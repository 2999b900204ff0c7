// A concurrent program on one thread: a runtime with workers = 1 runs every task on the thread
// that called block_on, interleaving them at their co_awaits. No other thread is started.
//
//   single_thread [--count N]     (--workers other than 1 is refused; Ctrl-C stops it cleanly)
//
// What runs at once:
//  - a pipeline: a producer sends 1..N (pausing 1 ms every 10 numbers), two squarer tasks share
//    its channel (each value goes to one of them) and send the squares on, the main task sums
//    them;
//  - a ping-pong pair exchanging a counter over two rendezvous channels 1000 times;
//  - a ticker that sleeps 2 ms at a time until the others are done.
// Every task checks, at every resumption, that it runs on the main thread.
#include "common/cli.hpp"
#include "common/signals.hpp"

#include <corio/channel.hpp>
#include <corio/corio.hpp>
#include <corio/select.hpp>

#include <fmt/format.h>

#include <chrono>
#include <thread>

using namespace std::chrono_literals;

namespace {

// Counts resumptions on the main thread and elsewhere. One thread: plain integers suffice.
struct thread_check {
  std::thread::id main = std::this_thread::get_id();
  long here = 0;
  long elsewhere = 0;
  void operator()() { ++(std::this_thread::get_id() == main ? here : elsewhere); }
};

corio::task<> produce(corio::sender<long> tx, long n, thread_check* check) {
  for (long v = 1; v <= n; ++v) {
    if (v % 10 == 0) co_await corio::sleep_for(1ms);
    co_await tx.send(v);
    (*check)();
  }
}

corio::task<long> square(corio::receiver<long> rx, corio::sender<long> tx, thread_check* check) {
  long handled = 0;
  while (auto v = co_await rx.recv()) {
    (*check)();
    co_await tx.send(*v * *v);
    ++handled;
  }
  co_return handled;
}

corio::task<> ping(corio::sender<int> out, corio::receiver<int> in, int rounds,
                   thread_check* check) {
  for (int i = 0; i < rounds; ++i) {
    co_await out.send(i);
    auto back = co_await in.recv();
    (*check)();
    if (!back || *back != i + 1) throw std::runtime_error("ping: wrong answer");
  }
}

corio::task<int> pong(corio::receiver<int> in, corio::sender<int> out, thread_check* check) {
  int answered = 0;
  while (auto v = co_await in.recv()) {  // until ping is done and its sender gone
    (*check)();
    co_await out.send(*v + 1);
    ++answered;
  }
  co_return answered;
}

// Ticks every 2 ms until `stop` closes.
corio::task<long> ticker(corio::receiver<int> stop, thread_check* check) {
  long ticks = 0;
  for (;;) {
    auto r = co_await corio::select(stop.recv(), corio::sleep_for(2ms));
    (*check)();
    if (r.index() == 0) co_return ticks;  // closed: nullopt
    ++ticks;
  }
}

corio::task<> demo(long n) {
  thread_check check;
  auto [stop_tx, stop_rx] = corio::make_channel<int>(0);
  auto tick = corio::spawn(ticker(std::move(stop_rx), &check));

  auto [num_tx, num_rx] = corio::make_channel<long>(4);
  auto [sq_tx, sq_rx] = corio::make_channel<long>(4);
  auto producer = corio::spawn(produce(std::move(num_tx), n, &check));
  auto sq1 = corio::spawn(square(num_rx, sq_tx, &check));  // copies: shared by both squarers
  auto sq2 = corio::spawn(square(std::move(num_rx), std::move(sq_tx), &check));

  auto [ping_tx, ping_rx] = corio::make_channel<int>(0);
  auto [pong_tx, pong_rx] = corio::make_channel<int>(0);
  auto pinger = corio::spawn(ping(std::move(ping_tx), std::move(pong_rx), 1000, &check));
  auto ponger = corio::spawn(pong(std::move(ping_rx), std::move(pong_tx), &check));

  long sum = 0;
  while (auto v = co_await sq_rx.recv()) {  // closes when both squarers are done
    check();
    sum += *v;
  }
  co_await producer;
  long by_first = co_await sq1;
  long by_second = co_await sq2;
  co_await pinger;
  int answered = co_await ponger;
  stop_tx.close();
  long ticks = co_await tick;
  check();

  fmt::print("pipeline: sum of squares 1..{} = {} (squarers took {} and {} values)\n", n, sum,
             by_first, by_second);
  fmt::print("ping-pong: {} round trips\n", answered);
  fmt::print("ticker: {} ticks of 2 ms meanwhile\n", ticks);
  fmt::print("resumptions on the main thread: {}, elsewhere: {}\n", check.here, check.elsewhere);
  fmt::print("everything ran on one thread: {}\n", check.elsewhere == 0 ? "yes" : "no");
}

}  // namespace

int main(int argc, char** argv) {
  long n = 100;
  auto cli = samples::parse(
      argc, argv, "single_thread: tasks, channels and timers on a one-worker runtime",
      {{"count", "numbers through the pipeline (default 100)", [&](std::string_view v) {
          n = static_cast<long>(samples::number("count", v, 1'000'000));
        }}});
  if (cli.workers > 1) {
    fmt::print(stderr, "single_thread: runs on one worker by design; drop --workers\n");
    return 2;
  }
  try {
    samples::stop_signals signals;
    corio::runtime rt{corio::runtime_options{.workers = 1}};
    fmt::print("single_thread: {} worker, the main thread\n", rt.worker_count());
    rt.block_on(samples::run_until_signal(signals, demo(n)));
    return 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "single_thread: {}\n", e.what());
    return 1;
  }
}
