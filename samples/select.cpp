// corio::select: wait for whichever comes first of two channel receives and a timeout.
//
//   select [--workers N] [--timeout-ms N]     (Ctrl-C stops it cleanly)
//
// Two producer tasks feed two channels at different paces: numbers every 20 ms (5 of them), words
// every 70 ms (3 of them). A consumer selects over both receives and a sleep_for, and prints
// which branch won each round. A receive that loses takes nothing out of its channel, so no
// value is lost; a sleep that loses is cancelled. A producer that finishes drops its sender,
// which closes its channel: the receive then yields std::nullopt, and the consumer stops
// selecting on it. The sample ends when both channels are closed.
#include "common/cli.hpp"
#include "common/signals.hpp"

#include <corio/channel.hpp>
#include <corio/corio.hpp>
#include <corio/select.hpp>

#include <fmt/format.h>

#include <chrono>
#include <optional>
#include <string>

using namespace std::chrono_literals;

namespace {

// The sender is a parameter (in the frame), so the channel closes when the producer returns.
corio::task<> numbers(corio::sender<int> tx) {
  for (int i = 1; i <= 5; ++i) {
    co_await corio::sleep_for(20ms);
    co_await tx.send(i * 10);
  }
}

constexpr const char* words_sent[] = {"alpha", "beta", "gamma"};

corio::task<> words(corio::sender<std::string> tx) {
  for (const char* w : words_sent) {
    co_await corio::sleep_for(70ms);
    co_await tx.send(w);
  }
}

corio::task<> consume(corio::receiver<int> a, corio::receiver<std::string> b,
                      std::chrono::milliseconds timeout) {
  int from_a = 0, from_b = 0, timeouts = 0;
  bool a_open = true, b_open = true;
  auto on_a = [&](const std::optional<int>& v) {
    if (!v) {
      a_open = false;
      fmt::print("a: closed\n");
      return;
    }
    ++from_a;
    fmt::print("a -> {}\n", *v);
  };
  auto on_b = [&](const std::optional<std::string>& v) {
    if (!v) {
      b_open = false;
      fmt::print("b: closed\n");
      return;
    }
    ++from_b;
    fmt::print("b -> {}\n", *v);
  };
  auto on_timeout = [&] {
    ++timeouts;
    fmt::print("timeout: nothing for {} ms\n", timeout.count());
  };
  // select's branches are fixed at compile time; once a channel is closed its receive would
  // win every round at once (with nullopt), so the loop selects over the channels still open.
  while (a_open || b_open) {
    if (a_open && b_open) {
      auto r = co_await corio::select(a.recv(), b.recv(), corio::sleep_for(timeout));
      switch (r.index()) {
        case 0:
          on_a(std::get<0>(r));
          break;
        case 1:
          on_b(std::get<1>(r));
          break;
        default:
          on_timeout();
      }
    } else if (a_open) {
      auto r = co_await corio::select(a.recv(), corio::sleep_for(timeout));
      if (r.index() == 0) {
        on_a(std::get<0>(r));
      } else {
        on_timeout();
      }
    } else {
      auto r = co_await corio::select(b.recv(), corio::sleep_for(timeout));
      if (r.index() == 0) {
        on_b(std::get<0>(r));
      } else {
        on_timeout();
      }
    }
  }
  fmt::print("done: {} from a, {} from b, {} timeouts\n", from_a, from_b, timeouts);
}

corio::task<> demo(std::chrono::milliseconds timeout) {
  auto [tx_a, rx_a] = corio::make_channel<int>(1);
  auto [tx_b, rx_b] = corio::make_channel<std::string>(1);
  // The producers own the only senders (moved into their frames).
  auto pa = corio::spawn(numbers(std::move(tx_a)));
  auto pb = corio::spawn(words(std::move(tx_b)));
  co_await consume(std::move(rx_a), std::move(rx_b), timeout);
  co_await pa;
  co_await pb;
}

}  // namespace

int main(int argc, char** argv) {
  long timeout_ms = 30;
  auto cli = samples::parse(
      argc, argv, "select: the first of two channel receives and a timeout, round after round",
      {{"timeout-ms", "the timeout branch of each round (default 30)", [&](std::string_view v) {
          timeout_ms = static_cast<long>(samples::number("timeout-ms", v, 3'600'000));
        }}});
  try {
    samples::stop_signals signals;
    corio::runtime rt{corio::runtime_options{.workers = cli.workers}};
    fmt::print("select: {} workers\n", rt.worker_count());
    rt.block_on(samples::run_until_signal(signals, demo(std::chrono::milliseconds(timeout_ms))));
    return 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "select: {}\n", e.what());
    return 1;
  }
}
