// join_handle::cancel and corio::timeout.
// Invariants: a cancelled task resumes exactly once, at the co_await it was suspended in, with
// operation_cancelled (or with the real result of an operation that completed first), and every
// later suspending co_await throws too; its destructors run; no ring operation is left in flight.
// A timeout turns its own cancellation into timed_out and leaves the task's own cancellation alone.
#include <doctest/doctest.h>

#include "../support/guard_buffer.hpp"
#include "../support/invariants.hpp"

#include <corio/corio.hpp>
#include <corio/detail/diagnostics.hpp>
#include <corio/fd_stream.hpp>

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <exception>
#include <optional>
#include <random>
#include <thread>
#include <vector>

using corio::task;
using corio::test::counted;
using clk = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

constexpr long long hour_ns = 3600LL * 1'000'000'000;

// Runs `t`, cancels it after `after`, and returns what joining it threw (or nothing).
template <class T>
task<std::exception_ptr> cancel_after(task<T> t, std::chrono::microseconds after) {
  auto h = corio::spawn(std::move(t));
  co_await corio::sleep_for(after);
  h.cancel();
  try {
    co_await h;
  } catch (...) {
    co_return std::current_exception();
  }
  co_return nullptr;
}

bool is_cancelled(std::exception_ptr e) {
  try {
    if (e) std::rethrow_exception(e);
  } catch (const corio::operation_cancelled&) {
    return true;
  } catch (...) {
  }
  return false;
}

}  // namespace

TEST_SUITE("cancel") {
  TEST_CASE("cancel wakes a task blocked in each kind of wait, and its destructors run") {
    for (std::size_t workers : {1u, 2u}) {
      counted::live = 0;
      corio::runtime rt{{.workers = workers, .max_blocking_threads = 1}};
      rt.block_on([]() -> task<> {
        auto t0 = clk::now();
        // sleep
        CHECK(is_cancelled(co_await cancel_after(
            [](counted) -> task<> { co_await corio::sleep_for(1h); }(counted{}), 2ms)));
        // a ring operation in flight
        CHECK(is_cancelled(co_await cancel_after(
            [](counted) -> task<> { co_await corio::detail::ring_timeout(hour_ns); }(counted{}),
            2ms)));
        // a join of a task that goes on (it is cancelled separately below)
        auto forever = corio::spawn([]() -> task<> { co_await corio::sleep_for(1h); }());
        CHECK(is_cancelled(co_await cancel_after(
            [](corio::join_handle<void>& h, counted) -> task<> { co_await h; }(forever, counted{}),
            2ms)));
        CHECK(forever.valid());
        CHECK_FALSE(forever.is_finished());
        forever.cancel();
        CHECK(is_cancelled(co_await [](corio::join_handle<void>& h) -> task<std::exception_ptr> {
          try {
            co_await h;
          } catch (...) {
            co_return std::current_exception();
          }
          co_return nullptr;
        }(forever)));
        // a loop of yields
        CHECK(is_cancelled(co_await cancel_after(
            [](counted) -> task<> {
              for (;;) co_await corio::yield_now();
            }(counted{}),
            2ms)));
        // a queued blocking job: the only pool thread is busy until the cancel has been seen (a
        // job of fixed length could end first on a loaded machine, and the queued one run)
        std::atomic<bool> started{false};
        std::atomic<bool> release{false};
        auto busy =
            corio::spawn([](std::atomic<bool>* started, std::atomic<bool>* release) -> task<> {
              co_await corio::spawn_blocking([started, release] {
                started->store(true);
                for (int i = 0; i < 10'000 && !release->load(); ++i) {
                  std::this_thread::sleep_for(1ms);
                }
              });
            }(&started, &release));
        for (int i = 0; i < 5'000 && !started.load(); ++i) co_await corio::sleep_for(1ms);
        CHECK(started.load());
        CHECK(is_cancelled(co_await cancel_after(
            [](counted) -> task<> { co_await corio::spawn_blocking([] {}); }(counted{}), 1ms)));
        release.store(true);
        co_await busy;
        CHECK(corio::test::ms_since(t0) < 1000);
        CHECK(counted::live == 0);
      }());
      CHECK(rt.stats().total().ops_in_flight == 0);
    }
  }

  TEST_CASE("a cancelled task sees operation_cancelled at every later co_await that suspends") {
    int caught = corio::run(
        []() -> task<int> {
          auto h = corio::spawn([]() -> task<int> {
            int n = 0;
            for (int i = 0; i < 3; ++i) {
              try {
                co_await corio::sleep_for(1h);
              } catch (const corio::operation_cancelled&) {
                ++n;
              }
            }
            try {
              co_await corio::detail::nop();
            } catch (const corio::operation_cancelled&) {
              ++n;
            }
            co_return n;  // returning normally is allowed
          }());
          co_await corio::sleep_for(1ms);
          h.cancel();
          co_return co_await h;
        }(),
        {.workers = 2});
    CHECK(caught == 4);
  }

  TEST_CASE("cancel before the task first runs: its first suspension throws") {
    bool ok = corio::run(
        []() -> task<bool> {
          auto h = corio::spawn([]() -> task<> { co_await corio::sleep_for(1h); }());
          h.cancel();  // one worker: the task has not started yet
          try {
            co_await h;
          } catch (const corio::operation_cancelled&) {
            co_return true;
          }
          co_return false;
        }(),
        {.workers = 1});
    CHECK(ok);
  }

  TEST_CASE("an operation that completes before its cancellation keeps its result") {
    int res = corio::run(
        []() -> task<int> {
          // The timeout completes at once; cancelling afterwards finds nothing to cancel.
          auto h = corio::spawn(
              []() -> task<int> { co_return co_await corio::detail::ring_timeout(1); }());
          while (!h.is_finished()) co_await corio::yield_now();
          h.cancel();
          co_return co_await h;
        }(),
        {.workers = 2});
    CHECK(res == -ETIME);
  }

  TEST_CASE("cancel from a foreign thread") {
    corio::runtime rt{{.workers = 2}};
    bool ok = rt.block_on([]() -> task<bool> {
      auto h = corio::spawn([]() -> task<> { co_await corio::detail::ring_timeout(hour_ns); }());
      co_await corio::sleep_for(1ms);
      std::thread t([&h] { h.cancel(); });
      t.join();
      try {
        co_await h;
      } catch (const corio::operation_cancelled&) {
        co_return true;
      }
      co_return false;
    }());
    CHECK(ok);
  }

  TEST_CASE("one worker: a cancel from another thread is never lost while the task begins a wait") {
    // A one-worker runtime registers waits without the cancel lock; a poke from another thread
    // then always queues a message to the worker (cancel.cpp, step 5). Each round a task starts
    // a one-hour sleep while a plain thread cancels it after a random spin, so the poke lands
    // before, during and after the sleep's registration. A lost cancellation leaves the task
    // asleep: the join times out.
    long rounds = corio::test::scaled(20'000);
    std::atomic<corio::join_handle<void>*> target{nullptr};
    std::atomic<bool> cancelled{false};
    std::atomic<bool> quit{false};
    std::thread canceller([&] {
      std::mt19937 rng(11);
      while (!quit.load()) {
        corio::join_handle<void>* h = target.exchange(nullptr);
        if (h == nullptr) continue;
        for (unsigned spin = rng() % 1500; spin > 0; --spin) asm volatile("" ::: "memory");
        h->cancel();
        cancelled.store(true);
      }
    });
    corio::runtime rt{{.workers = 1}};
    auto [lost, woken] =
        rt.block_on([](long rounds, auto& target, auto& cancelled) -> task<std::pair<long, long>> {
          long lost = 0, woken = 0;
          for (long i = 0; i < rounds; ++i) {
            auto h = corio::spawn([]() -> task<> { co_await corio::sleep_for(1h); }());
            cancelled.store(false);
            target.store(&h);
            // The sleeper runs at the first yield; the handle is not touched until the cancel
            // returned (join_handle::cancel may race the task, not another use of the handle).
            while (!cancelled.load()) co_await corio::yield_now();
            try {
              co_await corio::timeout(1s, std::move(h));
            } catch (const corio::operation_cancelled&) {
              ++woken;
            } catch (const std::system_error& e) {
              if (e.code() != std::errc::timed_out) throw;
              ++lost;
            }
          }
          co_return std::pair{lost, woken};
        }(rounds, target, cancelled));
    quit.store(true);
    canceller.join();
    CHECK(lost == 0);
    CHECK(woken == rounds);
  }

  TEST_CASE("the operation_cancelled of a cancelled detached task is not reported as unhandled") {
    std::atomic<int> reported{0};
    corio::run(
        []() -> task<> {
          auto h = corio::spawn([]() -> task<> { co_await corio::sleep_for(1h); }());
          h.cancel();
          h.detach();
          co_await corio::sleep_for(5ms);
        }(),
        {.workers = 2,
         .on_unhandled_exception = [&](std::exception_ptr, std::uint64_t) { ++reported; }});
    CHECK(reported == 0);
  }

  TEST_CASE("cancel racing completion: every task resumes exactly once (T02)") {
    long rounds = corio::test::scaled(3000);
    corio::runtime rt{{.workers = 2}};
    auto [resumed, cancelled] = rt.block_on([](long rounds) -> task<std::pair<long, long>> {
      long resumed = 0, cancelled = 0;
      std::mt19937 rng(7);
      for (long i = 0; i < rounds; ++i) {
        long long ns = static_cast<long long>(rng() % 20'000);  // 0-20 us
        auto h = corio::spawn([](long long ns) -> task<int> {
          co_return co_await corio::detail::ring_timeout(ns);
        }(ns));
        if (rng() % 2) co_await corio::yield_now();
        h.cancel();
        try {
          int r = co_await h;
          CHECK(r == -ETIME);
          ++resumed;
        } catch (const corio::operation_cancelled&) {
          ++cancelled;
          ++resumed;
        }
      }
      co_return std::pair{resumed, cancelled};
    }(rounds));
    CHECK(resumed == rounds);
    MESSAGE(cancelled << " of " << rounds << " were cancelled; the rest completed first");
    CHECK(rt.stats().total().ops_in_flight == 0);
  }

  TEST_CASE("timeout on a sleep throws timed_out on time") {
    double ms = corio::run(
        []() -> task<double> {
          auto t0 = clk::now();
          bool threw = false;
          try {
            co_await corio::timeout(10ms, corio::sleep_for(1h));
          } catch (const corio::timed_out& e) {
            threw = true;
            CHECK(e.code() == std::errc::timed_out);
          }
          CHECK(threw);
          co_return corio::test::ms_since(t0);
        }(),
        {.workers = 2});
    CHECK(ms >= 10);
    CHECK(ms < 500);
  }

  TEST_CASE("timeout returns the value of an awaitable that finishes in time") {
    int v = corio::run(
        []() -> task<int> {
          int a = co_await corio::timeout(1s, []() -> task<int> {
            co_await corio::sleep_for(1ms);
            co_return 20;
          }());
          co_await corio::timeout(1s, corio::sleep_for(1ms));  // void
          auto h = corio::spawn([]() -> task<int> { co_return 22; }());
          int b = co_await corio::timeout(1s, h);
          co_return a + b;
        }(),
        {.workers = 2});
    CHECK(v == 42);
  }

  TEST_CASE("timeout cancels a ring operation inside a task and reaps it") {
    corio::runtime rt{{.workers = 2}};
    bool threw = rt.block_on([]() -> task<bool> {
      try {
        co_await corio::timeout(
            5ms, []() -> task<> { co_await corio::detail::ring_timeout(hour_ns); }());
      } catch (const corio::timed_out&) {
        co_return true;
      }
      co_return false;
    }());
    CHECK(threw);
    CHECK(rt.stats().total().ops_in_flight == 0);
  }

  TEST_CASE("a timeout whose task moved to another worker disarms its timer there") {
    corio::run(
        []() -> task<> {
          for (int i = 0; i < 200; ++i) {
            co_await corio::detail::resume_on(static_cast<unsigned>(i));
            int v = co_await corio::timeout(1s, [](int i) -> task<int> {
              co_await corio::detail::resume_on(static_cast<unsigned>(i + 1));  // move away
              co_return i;
            }(i));
            CHECK(v == i);
          }
        }(),
        {.workers = 2});
  }

  TEST_CASE("nested timeouts: the one that fires is the one that surfaces") {
    corio::run(
        []() -> task<> {
          // Inner fires first: the inner timeout throws timed_out; the outer returns its value.
          int r = co_await corio::timeout(1s, []() -> task<int> {
            try {
              co_await corio::timeout(5ms, corio::sleep_for(1h));
            } catch (const corio::timed_out&) {
              co_return 1;
            }
            co_return 0;
          }());
          CHECK(r == 1);
          // Outer fires first: the inner sees the cancellation as operation_cancelled, which the
          // outer turns into timed_out.
          bool outer = false;
          try {
            co_await corio::timeout(
                5ms, []() -> task<> { co_await corio::timeout(1h, corio::sleep_for(1h)); }());
          } catch (const corio::timed_out&) {
            outer = true;
          }
          CHECK(outer);
          // After a timeout the task can wait again normally.
          co_await corio::sleep_for(1ms);
        }(),
        {.workers = 2});
  }

  TEST_CASE("cancelling a task inside a timeout surfaces as operation_cancelled, not timed_out") {
    bool ok = corio::run(
        []() -> task<bool> {
          auto h =
              corio::spawn([]() -> task<> { co_await corio::timeout(1h, corio::sleep_for(1h)); }());
          co_await corio::sleep_for(2ms);
          h.cancel();
          try {
            co_await h;
          } catch (const corio::timed_out&) {
            co_return false;
          } catch (const corio::operation_cancelled&) {
            co_return true;
          }
          co_return false;
        }(),
        {.workers = 2});
    CHECK(ok);
  }

  TEST_CASE("a zero timeout times out an awaitable that would wait") {
    bool ok = corio::run(
        []() -> task<bool> {
          try {
            co_await corio::timeout(0ms, corio::sleep_for(1h));
          } catch (const corio::timed_out&) {
            co_return true;
          }
          co_return false;
        }(),
        {.workers = 1});
    CHECK(ok);
  }

  TEST_CASE("many timeouts expiring at the same time all fire") {
    long n = corio::test::scaled(1000);
    long fired = corio::run(
        [](long n) -> task<long> {
          std::atomic<long> fired{0};
          std::vector<corio::join_handle<void>> hs;
          auto deadline = 20ms;
          for (long i = 0; i < n; ++i) {
            hs.push_back(
                corio::spawn([](std::atomic<long>& fired, std::chrono::milliseconds d) -> task<> {
                  try {
                    co_await corio::timeout(d, corio::detail::ring_timeout(hour_ns));
                  } catch (const corio::timed_out&) {
                    ++fired;
                  }
                }(fired, deadline)));
          }
          for (auto& h : hs) co_await h;
          co_return fired.load();
        }(n),
        {.workers = 2});
    CHECK(fired == n);
  }
  TEST_CASE(
      "a cancelled read never touches its buffer after it resumed, and loses no byte "
      "(guard buffers; pipes and sockets; the writer a task or a foreign thread, T01/T02)") {
    // Each round: a task reads into a fresh guard buffer, a writer writes 16 bytes at a random
    // moment, and the reader is cancelled at a random moment. Once the join returned, the buffer
    // is made inaccessible: a read still pending in the kernel would now fault instead of writing
    // into freed memory, and it would consume bytes. So the bytes are accounted for: what the
    // reader got plus what is still readable (FIONREAD) is all that was written, and what it got
    // is the pattern. The writer is a task on a worker, or a plain thread outside the runtime.
    const std::pair<bool, bool> variants[] = {
        {false, false}, {true, false}, {false, true}, {true, true}};
    for (const auto& variant : variants) {
      const bool socket = variant.first, foreign = variant.second;
      CAPTURE(socket);
      CAPTURE(foreign);
      long rounds = corio::test::scaled(400);
      corio::runtime rt{{.workers = 2}};
      auto [got_data, got_cancelled] =
          rt.block_on([](bool socket, bool foreign, long rounds) -> task<std::pair<long, long>> {
            long data = 0, cancelled = 0;
            std::mt19937 rng(11);
            const std::array<char, 16> msg{'c', 'o', 'r', 'i', 'o', '-', 'g', 'u',
                                           'a', 'r', 'd', '-', 'b', 'u', 'f', '!'};
            for (long i = 0; i < rounds; ++i) {
              int fds[2];
              int rc = socket ? ::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds)
                              : ::pipe2(fds, O_CLOEXEC);
              REQUIRE(rc == 0);
              auto buf = std::make_unique<corio::test::guard_buffer>(64);
              auto reader = corio::spawn([](int fd, std::span<std::byte> b) -> task<std::size_t> {
                auto in = corio::fd_stream::borrow(fd);
                co_return co_await in.read(b);
              }(fds[0], buf->bytes()));
              auto write_us = std::chrono::microseconds(rng() % 60);
              std::optional<corio::join_handle<void>> writer;
              std::thread thread_writer;
              std::atomic<bool> written{false};
              if (foreign) {
                thread_writer = std::thread([fd = fds[1], write_us, &msg, &written] {
                  std::this_thread::sleep_for(write_us);
                  written = ::write(fd, msg.data(), msg.size()) == 16;
                });
              } else {
                writer = corio::spawn([](int fd, std::chrono::microseconds after,
                                         const std::array<char, 16>* m) -> task<> {
                  co_await corio::sleep_for(after);
                  REQUIRE(::write(fd, m->data(), m->size()) == 16);
                }(fds[1], write_us, &msg));
              }
              co_await corio::sleep_for(std::chrono::microseconds(rng() % 60));
              reader.cancel();
              std::size_t n = 0;
              try {
                n = co_await reader;
                ++data;
              } catch (const corio::operation_cancelled&) {
                ++cancelled;
              }
              REQUIRE(n <= 16);
              CHECK(std::memcmp(buf->bytes().data(), msg.data(), n) == 0);
              buf->release();  // from here on, nobody may write into it
              if (foreign) {
                thread_writer.join();  // at most 60 us of blocking this worker
                CHECK(written);
              } else {
                co_await *writer;
              }
              int left = -1;
              REQUIRE(::ioctl(fds[0], FIONREAD, &left) == 0);
              CHECK(n + static_cast<std::size_t>(left) == 16);
              ::close(fds[0]);
              ::close(fds[1]);
            }
            co_return std::pair{data, cancelled};
          }(socket, foreign, rounds));
      MESSAGE(got_data << " reads completed first, " << got_cancelled << " were cancelled");
      CHECK(got_data + got_cancelled == rounds);
      CHECK(rt.stats().total().ops_in_flight == 0);
    }
  }
}
