// corio::loop_select: one loop that serves two channels of different types with a handler each,
// until both are closed.
//
//   loop_select [--workers N] [--count N]     (Ctrl-C stops it cleanly)
//
// Two producers send the numbers 1..N on an int channel (odd and even numbers, so the channel
// has two senders: it closes when both are done), and a third sends N/2 strings "msg-<i>" on a
// string channel. loop_select takes a value from whichever channel has one (at random when both
// do, so neither starves), runs that channel's handler, and returns when both channels are
// closed and drained. The int handler is a plain function; the string handler returns a task,
// which loop_select awaits before it selects again.
#include "common/cli.hpp"
#include "common/signals.hpp"

#include <corio/channel.hpp>
#include <corio/corio.hpp>
#include <corio/select.hpp>

#include <fmt/format.h>

#include <string>

namespace {

struct totals {
  long ints = 0;
  long long int_sum = 0;
  long strings = 0;
  long long string_bytes = 0;
};

corio::task<> send_numbers(corio::sender<int> tx, int first, int last, int step) {
  for (int v = first; v <= last; v += step) co_await tx.send(v);
}

corio::task<> send_strings(corio::sender<std::string> tx, int count) {
  for (int i = 0; i < count; ++i) {
    co_await tx.send(fmt::format("msg-{}", i));
    if (i % 64 == 0) co_await corio::yield_now();  // let the number producers get ahead
  }
}

// The string handler's work, as a coroutine: state comes in as parameters, never by a capture
// (a capturing lambda coroutine would refer to a closure that may be gone when it resumes).
corio::task<> count_string(totals* t, std::string s) {
  co_await corio::yield_now();  // stands for real work that suspends
  ++t->strings;
  t->string_bytes += static_cast<long long>(s.size());
}

corio::task<> demo(int count) {
  auto [int_tx, int_rx] = corio::make_channel<int>(16);
  auto [str_tx, str_rx] = corio::make_channel<std::string>(16);
  auto odd = corio::spawn(send_numbers(int_tx, 1, count, 2));  // a copy: a second sender
  auto even = corio::spawn(send_numbers(std::move(int_tx), 2, count, 2));
  auto strings = corio::spawn(send_strings(std::move(str_tx), count / 2));

  totals t;
  // Not coroutines, so capturing is fine: loop_select keeps the handlers in its frame. (Named
  // first: GCC 12 mishandles a capturing lambda created inside a co_await expression.)
  auto on_int = [&t](int v) {
    ++t.ints;
    t.int_sum += v;
  };
  auto on_string = [&t](std::string s) { return count_string(&t, std::move(s)); };
  co_await corio::loop_select(corio::on(int_rx, on_int), corio::on(str_rx, on_string));
  co_await odd;
  co_await even;
  co_await strings;
  fmt::print("both channels closed\n");
  fmt::print("ints: {} values, sum {}\n", t.ints, t.int_sum);
  fmt::print("strings: {} values, {} bytes\n", t.strings, t.string_bytes);
}

}  // namespace

int main(int argc, char** argv) {
  int count = 1000;
  auto cli = samples::parse(
      argc, argv, "loop_select: serve an int channel and a string channel until both close",
      {{"count", "numbers 1..N on the int channel, N/2 strings (default 1000)",
        [&](std::string_view v) {
          count = static_cast<int>(samples::number("count", v, 100'000));
        }}});
  try {
    samples::stop_signals signals;
    corio::runtime rt{corio::runtime_options{.workers = cli.workers}};
    fmt::print("loop_select: {} workers\n", rt.worker_count());
    rt.block_on(samples::run_until_signal(signals, demo(count)));
    return 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "loop_select: {}\n", e.what());
    return 1;
  }
}
