// fork() while a runtime runs (T39 in docs/reliability.md; lib/fork_guard.hpp).
// Invariants: the parent's pending reads and armed timers complete normally after any kind of
// child; a child may exec, exit at once, or build and use a runtime of its own; a child never
// runs the parent's runtime: a task that goes on after fork() in the child ends it with status
// 127 and a message, and the inherited runtime's entry points throw there.
#include <doctest/doctest.h>

#include "../support/invariants.hpp"
#include "../support/net.hpp"

#include <corio/corio.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using corio::task;
using namespace std::chrono_literals;

// No INFO in these coroutines: doctest keeps its contexts per thread, and a task can resume on
// another worker after a co_await.

namespace {

constexpr int pending_reads = 100;
constexpr int armed_timers = 10;

// What a child did: its exit status (or -signal) and what it wrote to stderr.
struct child_result {
  int status = -1000;
  std::string err;
};

// Reads the child's stderr to EOF and reaps it, off the workers.
child_result collect(pid_t pid, int err_fd) {
  child_result r;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(err_fd, buf, sizeof buf)) > 0) r.err.append(buf, static_cast<std::size_t>(n));
  ::close(err_fd);
  int status = 0;
  if (::waitpid(pid, &status, 0) == pid) {
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  }
  return r;
}

// In the child: 1 MiB through a socketpair on a fresh one-worker runtime, checked byte for byte.
bool echo_on_new_runtime() {
  corio::runtime rt({.workers = 1});
  return rt.block_on([]() -> task<bool> {
    auto [a, b] = corio::net::unix_stream::pair();
    auto out = corio::test::pattern(1u << 20, 39);
    auto echo = corio::spawn([](corio::net::unix_stream s) -> task<> {
      std::vector<std::byte> buf(65536);
      while (std::size_t n = co_await s.read(buf)) {
        co_await s.write_all(std::span(buf.data(), n));
      }
    }(std::move(b)));
    auto writer =
        corio::spawn([](corio::net::unix_stream& a, std::vector<std::byte>& out) -> task<> {
          co_await a.write_all(out);
          a.shutdown(corio::net::shutdown_how::write);
          co_return;
        }(a, out));
    std::vector<std::byte> in(out.size());
    co_await a.read_exact(in);
    co_await writer;
    co_await echo;
    co_return in == out;
  }());
}

enum class child_kind { exec, new_runtime, bare_exit, resumes_parent_task };

// Forks from inside a task, on a worker of the running runtime; the child does `kind`.
task<child_result> fork_child(child_kind kind) {
  int err[2];
  REQUIRE(::pipe2(err, O_CLOEXEC) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(err[1], 2);
    ::alarm(30);  // a hang is a failure (SIGALRM), not a stall
    switch (kind) {
      case child_kind::exec: {
        char arg0[] = "true";
        char* argv[] = {arg0, nullptr};
        ::execv("/bin/true", argv);
        ::_exit(126);
      }
      case child_kind::new_runtime: {
        bool ok = false;
        try {
          ok = echo_on_new_runtime();
        } catch (const std::exception& e) {
          (void)!::write(2, e.what(), std::strlen(e.what()));
        }
        ::_exit(ok ? 0 : 1);
      }
      case child_kind::bare_exit:
        ::_exit(0);
      case child_kind::resumes_parent_task:
        // Wrong, and stopped: the task suspends, its worker gets control back in the child, and
        // the guard ends the child before anything reaches the parent's ring.
        co_await corio::sleep_for(1ms);
        ::_exit(0);  // not reached
    }
  }
  ::close(err[1]);
  auto reap = [pid, fd = err[0]] { return collect(pid, fd); };
  co_return co_await corio::spawn_blocking(reap);
}

task<std::uint32_t> pending_read(int fd) {
  corio::fd_stream in(fd);
  std::array<std::byte, 4> tag{};
  co_await in.read_exact(tag);
  std::uint32_t v;
  std::memcpy(&v, tag.data(), sizeof v);
  co_return v;
}

task<bool> armed_timer(std::chrono::steady_clock::time_point due) {
  co_await corio::sleep_until(due);
  co_return std::chrono::steady_clock::now() >= due;
}

}  // namespace

TEST_SUITE("fork") {
  TEST_CASE(
      "fork with 100 reads pending and 10 timers armed: the children exec, run their own "
      "runtime or exit, and the parent's ops complete normally (T39)") {
    corio::run(
        []() -> task<> {
          std::vector<int> writers;
          std::vector<corio::join_handle<std::uint32_t>> reads;
          for (int i = 0; i < pending_reads; ++i) {
            int p[2];
            REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
            writers.push_back(p[1]);
            reads.push_back(corio::spawn(pending_read(p[0])));
          }
          auto due = std::chrono::steady_clock::now() + 300ms;
          std::vector<corio::join_handle<bool>> timers;
          for (int i = 0; i < armed_timers; ++i) timers.push_back(corio::spawn(armed_timer(due)));
          co_await corio::sleep_for(20ms);  // every read and timer is in flight or armed

          child_result exec = co_await fork_child(child_kind::exec);
          CHECK(exec.status == 0);
          child_result own = co_await fork_child(child_kind::new_runtime);
          CHECK_MESSAGE(own.status == 0, own.err);
          child_result bare = co_await fork_child(child_kind::bare_exit);
          CHECK(bare.status == 0);
          child_result wrong = co_await fork_child(child_kind::resumes_parent_task);
          CHECK_MESSAGE(wrong.status == 127, wrong.err);
          CHECK_MESSAGE(
              wrong.err.find("got control back in the child process") != std::string::npos,
              wrong.err);

          for (int i = 0; i < pending_reads; ++i) {
            std::uint32_t tag = 0x39000000u + static_cast<std::uint32_t>(i);
            REQUIRE(::write(writers[static_cast<std::size_t>(i)], &tag, sizeof tag) == 4);
            ::close(writers[static_cast<std::size_t>(i)]);
          }
          int good = 0;
          for (int i = 0; i < pending_reads; ++i) {
            std::uint32_t got = co_await std::move(reads[static_cast<std::size_t>(i)]);
            good += got == 0x39000000u + static_cast<std::uint32_t>(i);
          }
          CHECK(good == pending_reads);
          int fired = 0;
          for (auto& t : timers) fired += co_await std::move(t);
          CHECK(fired == armed_timers);
        }(),
        {.workers = 2});
  }

  TEST_CASE(
      "in a child forked from another thread, the parent's runtime refuses spawn and "
      "block_on, and a new runtime works") {
    corio::runtime rt({.workers = 2});
    rt.block_on([](corio::runtime& rt) -> task<> {
      auto ticker = corio::spawn([]() -> task<int> {
        int n = 0;
        for (int i = 0; i < 20; ++i, ++n) co_await corio::sleep_for(5ms);
        co_return n;
      }());
      auto fork_here = [&rt] {
        int err[2];
        if (::pipe2(err, O_CLOEXEC) != 0) return child_result{};
        pid_t pid = ::fork();
        if (pid == 0) {
          ::dup2(err[1], 2);
          ::alarm(30);
          int rc = 0;
          try {
            rt.spawn([]() -> task<> { co_return; }());
            rc |= 1;  // should have thrown
          } catch (const std::logic_error& e) {
            if (std::strstr(e.what(), "created before a fork()") == nullptr) rc |= 2;
          }
          try {
            rt.block_on([]() -> task<> { co_return; }());
            rc |= 4;
          } catch (const std::logic_error& e) {
            if (std::strstr(e.what(), "corio::runtime::block_on") == nullptr) rc |= 8;
          }
          try {
            if (!echo_on_new_runtime()) rc |= 16;
          } catch (const std::exception& e) {
            (void)!::write(2, e.what(), std::strlen(e.what()));
            rc |= 32;
          }
          ::_exit(rc);
        }
        ::close(err[1]);
        if (pid < 0) {
          ::close(err[0]);
          return child_result{};
        }
        return collect(pid, err[0]);
      };
      child_result r = co_await corio::spawn_blocking(fork_here);
      CHECK_MESSAGE(r.status == 0, r.err);
      CHECK(co_await std::move(ticker) == 20);
    }(rt));
  }
}
