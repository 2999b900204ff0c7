// corio channels: bounded, rendezvous and unbounded MPMC.
// Invariants: every value sent is received exactly once (sum and count), in order per sender;
// a channel closes for receivers when the last sender goes (after draining) and for senders when
// the last receiver goes; a cancelled send puts nothing in and a cancelled receive takes nothing
// out; tasks and plain threads share a channel; shutdown leaves no waiter behind.
#include <doctest/doctest.h>

#include "../support/invariants.hpp"

#include <corio/channel.hpp>
#include <corio/corio.hpp>
#include <corio/detail/ring_buffer.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using corio::task;
using corio::test::counted;
using corio::test::scaled;
using namespace std::chrono_literals;

namespace {

struct totals {
  std::atomic<long long> sum{0};
  std::atomic<long long> count{0};
};

task<> produce(corio::sender<long> tx, long first, long n) {
  for (long i = 0; i < n; ++i) co_await tx.send(first + i);
}

task<> consume(corio::receiver<long> rx, totals& t) {
  long long sum = 0;
  long long count = 0;
  while (auto v = co_await rx.recv()) {
    sum += *v;
    ++count;
  }
  t.sum += sum;
  t.count += count;
}

// N producers x M consumers move `total` values; checks sum and count.
void mpmc(std::size_t workers, std::size_t capacity, int producers, int consumers, long total) {
  corio::runtime rt{{.workers = workers}};
  totals t;
  rt.block_on(
      [](int producers, int consumers, long total, std::size_t capacity, totals& t) -> task<> {
        auto [tx, rx] = capacity == SIZE_MAX ? corio::make_channel<long>()
                                             : corio::make_channel<long>(capacity);
        std::vector<corio::join_handle<void>> hs;
        long per = total / producers;
        for (int p = 0; p < producers; ++p) hs.push_back(corio::spawn(produce(tx, p * per, per)));
        for (int c = 0; c < consumers; ++c) hs.push_back(corio::spawn(consume(rx, t)));
        {
          auto drop_tx = std::move(tx);  // the producers hold the only senders now
          auto drop_rx = std::move(rx);
        }
        for (auto& h : hs) co_await h;
      }(producers, consumers, total, capacity, t));
  long per = total / producers;
  long long n = per * producers;
  CHECK(t.count.load() == n);
  CHECK(t.sum.load() == n * (n - 1) / 2);
}

// The plain thread's side of share_with_thread: sends 1..n (n a multiple of 4) and checks that
// every value comes back once and in order, and then the end of the stream.
void thread_side(long n, corio::sender<long> tx, corio::receiver<long> back_rx) {
  long expect = 1;
  for (long i = 1; i <= n; ++i) {
    tx.send_blocking(i);
    if (i % 4 == 0) {  // let up to four values travel at once
      for (int k = 0; k < 4; ++k) CHECK(*back_rx.recv_blocking() == expect++);
    }
  }
  { auto drop = std::move(tx); }
  // The main task ends when its receiver sees the end; its sender goes with its frame.
  CHECK_FALSE(back_rx.recv_blocking().has_value());
  CHECK(expect == n + 1);
}

// The task's side: sends back every value until the thread's sender is gone.
task<> task_side(corio::receiver<long> rx, corio::sender<long> back) {
  while (auto v = co_await rx.recv()) co_await back.send(*v);
}

// A plain thread and the main task echo n values through two channels of capacity 8.
// `made_by_task`: the main task makes the channels (with one worker their locks are then biased
// to the worker's thread, and the thread's first operations revoke that while the task uses
// them); otherwise they are made before the runtime starts.
void share_with_thread(std::size_t workers, long n, bool made_by_task) {
  corio::runtime rt{{.workers = workers}};
  std::thread th;
  if (made_by_task) {
    rt.block_on([](long n, std::thread& th) -> task<> {
      auto [tx, rx] = corio::make_channel<long>(8);
      auto [back_tx, back_rx] = corio::make_channel<long>(8);
      th = std::thread(thread_side, n, std::move(tx), std::move(back_rx));
      co_await task_side(std::move(rx), std::move(back_tx));
    }(n, th));
  } else {
    auto [tx, rx] = corio::make_channel<long>(8);
    auto [back_tx, back_rx] = corio::make_channel<long>(8);
    th = std::thread(thread_side, n, std::move(tx), std::move(back_rx));
    rt.block_on(task_side(std::move(rx), std::move(back_tx)));
  }
  th.join();
}

}  // namespace

TEST_SUITE("channel") {
  TEST_CASE("values arrive in order, then nullopt when the senders are gone") {
    for (std::size_t cap : {std::size_t{0}, std::size_t{1}, std::size_t{4}, SIZE_MAX}) {
      corio::runtime rt{{.workers = 2}};
      rt.block_on([](std::size_t cap) -> task<> {
        auto [tx, rx] = cap == SIZE_MAX ? corio::make_channel<std::string>()
                                        : corio::make_channel<std::string>(cap);
        auto h = corio::spawn([](corio::sender<std::string> tx) -> task<> {
          for (int i = 0; i < 100; ++i) co_await tx.send(std::to_string(i));
        }(std::move(tx)));
        for (int i = 0; i < 100; ++i) {
          auto v = co_await rx.recv();
          REQUIRE(v.has_value());
          CHECK(*v == std::to_string(i));
        }
        CHECK_FALSE((co_await rx.recv()).has_value());
        CHECK(rx.is_closed());
        co_await h;
      }(cap));
    }
  }

  TEST_CASE("bounded: send waits while full; try_send reports full and keeps the value") {
    corio::runtime rt{{.workers = 1}};
    rt.block_on([]() -> task<> {
      auto [tx, rx] = corio::make_channel<std::unique_ptr<int>>(2);
      co_await tx.send(std::make_unique<int>(1));
      CHECK(tx.try_send(std::make_unique<int>(2)) == corio::send_status::sent);
      auto keep = std::make_unique<int>(3);
      CHECK(tx.try_send(keep) == corio::send_status::full);
      REQUIRE(keep != nullptr);  // not moved from
      CHECK(*keep == 3);
      auto h = corio::spawn([](corio::sender<std::unique_ptr<int>> tx) -> task<> {
        co_await tx.send(std::make_unique<int>(4));  // waits for room
      }(tx));
      co_await corio::sleep_for(2ms);
      CHECK_FALSE(h.is_finished());
      CHECK(**(co_await rx.recv()) == 1);
      co_await h;
      CHECK(rx.size() == 2);
      CHECK(**rx.try_recv() == 2);
      CHECK(**rx.try_recv() == 4);
      CHECK_FALSE(rx.try_recv().has_value());
    }());
  }

  TEST_CASE("rendezvous: a send completes only when a receiver takes the value") {
    corio::runtime rt{{.workers = 2}};
    rt.block_on([]() -> task<> {
      auto [tx, rx] = corio::make_channel<int>(0);
      CHECK(tx.try_send(1) == corio::send_status::full);
      auto h = corio::spawn([](corio::sender<int> tx) -> task<> { co_await tx.send(5); }(tx));
      co_await corio::sleep_for(2ms);
      CHECK_FALSE(h.is_finished());
      CHECK(*(co_await rx.recv()) == 5);
      co_await h;
      CHECK(rx.size() == 0);
    }());
  }

  // The receiver a send wakes runs next (the worker's LIFO slot), but only a few times in a row:
  // a pair handing values back and forth must leave the worker to a third task now and then.
  TEST_CASE("two tasks ping-ponging on one worker do not starve a third") {
    int third_runs = corio::run(
        []() -> task<int> {
          auto [a_tx, a_rx] = corio::make_channel<int>(0);
          auto [b_tx, b_rx] = corio::make_channel<int>(0);
          bool pair_done = false;
          int runs = 0;
          auto third = corio::spawn([](bool& done, int& runs) -> task<> {
            while (!done) {
              ++runs;
              co_await corio::yield_now();
            }
          }(pair_done, runs));
          auto peer = corio::spawn([](corio::receiver<int> rx, corio::sender<int> tx) -> task<> {
            while (auto v = co_await rx.recv()) co_await tx.send(*v + 1);
          }(std::move(a_rx), std::move(b_tx)));
          for (int i = 0; i < 10000; ++i) {
            co_await a_tx.send(i);
            auto back = co_await b_rx.recv();
            REQUIRE(back.has_value());
            CHECK(*back == i + 1);
          }
          int during = runs;
          pair_done = true;
          a_tx.close();
          co_await peer;
          co_await third;
          co_return during;
        }(),
        {.workers = 1});
    // 10,000 round trips are 20,000 wakes; the third task gets a turn every few of them.
    CHECK(third_runs > 1000);
  }

  TEST_CASE("closing: last receiver gone fails senders; close() drains then ends") {
    corio::runtime rt{{.workers = 2}};
    rt.block_on([]() -> task<> {
      {
        auto [tx, rx] = corio::make_channel<int>(1);
        co_await tx.send(1);
        auto h = corio::spawn([](corio::sender<int> tx) -> task<> { co_await tx.send(2); }(tx));
        co_await corio::sleep_for(2ms);
        { auto gone = std::move(rx); }
        CHECK_THROWS_AS(co_await h, corio::channel_closed);
        CHECK_THROWS_AS(co_await tx.send(3), corio::channel_closed);
        int v = 4;
        CHECK(tx.try_send(v) == corio::send_status::closed);
        CHECK(tx.is_closed());
      }
      {
        auto [tx, rx] = corio::make_channel<int>(4);
        co_await tx.send(1);
        co_await tx.send(2);
        rx.close();
        CHECK_THROWS_AS(co_await tx.send(3), corio::channel_closed);
        CHECK(*(co_await rx.recv()) == 1);
        CHECK(*(co_await rx.recv()) == 2);
        CHECK_FALSE((co_await rx.recv()).has_value());
      }
      {
        // A receiver waiting when close() comes sees the end.
        auto [tx, rx] = corio::make_channel<int>(4);
        auto h = corio::spawn([](corio::receiver<int> rx) -> task<bool> {
          co_return (co_await rx.recv()).has_value();
        }(rx));
        co_await corio::sleep_for(2ms);
        tx.close();
        CHECK_FALSE(co_await h);
      }
    }());
  }

  TEST_CASE("empty handles throw std::logic_error") {
    corio::runtime rt{{.workers = 1}};
    rt.block_on([]() -> task<> {
      corio::sender<int> tx;
      corio::receiver<int> rx;
      CHECK_THROWS_AS((void)tx.send(1), std::logic_error);
      CHECK_THROWS_AS((void)rx.recv(), std::logic_error);
      CHECK(rx.is_closed());
      co_return;
    }());
  }

  TEST_CASE("cancelled receives take nothing; cancelled sends put nothing in") {
    for (std::size_t workers : {1u, 2u}) {
      corio::runtime rt{{.workers = workers}};
      rt.block_on([]() -> task<> {
        auto [tx, rx] = corio::make_channel<int>(0);
        auto r =
            corio::spawn([](corio::receiver<int> rx) -> task<> { (void)co_await rx.recv(); }(rx));
        auto s = corio::spawn([](corio::sender<int> tx) -> task<> { co_await tx.send(1); }(tx));
        co_await s;  // the rendezvous paired them
        co_await r;
        auto r2 =
            corio::spawn([](corio::receiver<int> rx) -> task<> { (void)co_await rx.recv(); }(rx));
        co_await corio::sleep_for(2ms);
        r2.cancel();
        CHECK_THROWS_AS(co_await r2, corio::operation_cancelled);
        CHECK(tx.try_send(9) == corio::send_status::full);  // nobody waits any more
        auto s2 = corio::spawn([](corio::sender<int> tx) -> task<> { co_await tx.send(2); }(tx));
        co_await corio::sleep_for(2ms);
        s2.cancel();
        CHECK_THROWS_AS(co_await s2, corio::operation_cancelled);
        CHECK_FALSE(rx.try_recv().has_value());
        CHECK_THROWS_AS(co_await corio::timeout(2ms, rx.recv()), corio::timed_out);
      }());
    }
  }

  TEST_CASE("sends racing cancellation conserve every value") {
    for (std::size_t workers : {2u, 4u}) {
      corio::runtime rt{{.workers = workers}};
      rt.block_on([]() -> task<> {
        auto [tx, rx] = corio::make_channel<long>(1);
        std::atomic<long> sent{0};
        const long rounds = scaled(5000);
        auto consumer = corio::spawn([](corio::receiver<long> rx) -> task<long> {
          long got = 0;
          while (auto v = co_await rx.recv()) got += *v;
          co_return got;
        }(rx));
        { auto drop = std::move(rx); }
        for (long r = 0; r < rounds; ++r) {
          auto h = corio::spawn([](corio::sender<long> tx, std::atomic<long>& sent) -> task<> {
            co_await tx.send(1);
            sent.fetch_add(1);
          }(tx, sent));
          if (r % 3 == 0) co_await corio::yield_now();
          h.cancel();
          try {
            co_await h;
          } catch (const corio::operation_cancelled&) {
          }
        }
        { auto drop = std::move(tx); }
        long got = co_await consumer;
        CHECK(got == sent.load());
      }());
    }
  }

  TEST_CASE("N producers x M consumers move every value exactly once") {
    const long total = scaled(1'000'000);
    for (std::size_t workers : {1u, 2u, 4u}) {
      CAPTURE(workers);
      mpmc(workers, 64, 4, 4, total);
      mpmc(workers, 0, 3, 2, total / 10);
      mpmc(workers, SIZE_MAX, 2, 3, total / 5);
    }
  }

  TEST_CASE("plain threads and tasks share a channel") {
    // With one worker a task enrolls its wait inside await_suspend (no deferred action), and the
    // plain thread's wakes race that enrollment: values must still arrive once each, in order.
    for (std::size_t workers : {1u, 2u}) {
      for (bool made_by_task : {false, true}) {
        CAPTURE(workers);
        CAPTURE(made_by_task);
        share_with_thread(workers, scaled(20'000), made_by_task);
      }
    }
  }

  TEST_CASE("blocking forms refuse worker threads") {
    corio::runtime rt{{.workers = 1}};
    rt.block_on([]() -> task<> {
      auto [tx, rx] = corio::make_channel<int>(1);
      CHECK_THROWS_AS(rx.recv_blocking(), std::logic_error);
      CHECK_THROWS_AS(tx.send_blocking(2), std::logic_error);  // even with room: never here
      CHECK(tx.size() == 0);
      co_return;
    }());
  }

  TEST_CASE("shutdown destroys tasks waiting in send and recv; values are freed") {
    counted::live = 0;
    auto [tx, rx] = corio::make_channel<counted>(1);
    {
      corio::runtime rt{{.workers = 2}};
      rt.block_on([](corio::sender<counted> tx, corio::receiver<counted> rx) -> task<> {
        auto [tx2, rx2] = corio::make_channel<int>(0);
        for (int i = 0; i < 10; ++i) {
          corio::spawn([](corio::sender<counted> tx) -> task<> { co_await tx.send(counted{}); }(tx))
              .detach();
          corio::spawn([](corio::receiver<int> rx) -> task<> { (void)co_await rx.recv(); }(rx2))
              .detach();
        }
        co_await corio::sleep_for(5ms);
        (void)rx;
      }(tx, rx));
    }
    CHECK(counted::live.load() == 1);  // the one value in the buffer
    CHECK(rx.try_recv().has_value());
    CHECK(counted::live.load() == 0);
    CHECK(tx.try_send(counted{}) == corio::send_status::sent);  // nobody enrolled any more
  }

  // The channel's buffer against std::deque as a model: pushes and pops in bursts of varying
  // length move the head around the array and grow it while it is wrapped.
  TEST_CASE("ring_buffer keeps FIFO order across wrap-around and growth") {
    corio::detail::ring_buffer<std::unique_ptr<long>> ring;
    std::deque<long> model;
    std::uint64_t rng = 12345;
    long next = 0;
    for (int round = 0; round < 2000; ++round) {
      rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
      int pushes = static_cast<int>((rng >> 33) % 40);
      int pops = static_cast<int>((rng >> 45) % 40);
      for (int i = 0; i < pushes; ++i, ++next) {
        ring.push_back(std::make_unique<long>(next));
        model.push_back(next);
      }
      for (int i = 0; i < pops && !model.empty(); ++i) {
        REQUIRE(*ring.front() == model.front());
        ring.pop_front();
        model.pop_front();
      }
      REQUIRE(ring.size() == model.size());
      REQUIRE(ring.empty() == model.empty());
    }
  }

  TEST_CASE("ring_buffer destroys what it still holds, over-aligned values included") {
    struct alignas(64) wide {
      counted c;
      long v;
    };
    counted::live = 0;
    {
      corio::detail::ring_buffer<wide> ring;
      for (long i = 0; i < 100; ++i) ring.push_back(wide{counted{}, i});
      for (long i = 0; i < 37; ++i) {
        CHECK(reinterpret_cast<std::uintptr_t>(&ring.front()) % 64 == 0);
        CHECK(ring.front().v == i);
        ring.pop_front();
      }
      CHECK(counted::live.load() == 63);
    }
    CHECK(counted::live.load() == 0);
  }
}
