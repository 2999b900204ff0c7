// Clean exit on SIGINT and SIGTERM for the samples.
//
// stop_signals blocks both signals in the calling thread -- and so in every thread created later,
// the runtime's workers included -- and reads them from a signalfd through corio. run_until_signal
// runs the sample's work as a task and cancels it when a signal arrives: every task's destructors
// run, block_on returns, and main returns 0.
#pragma once

#include <corio/corio.hpp>

#include <fmt/format.h>

#include <sys/signalfd.h>

#include <csignal>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <utility>

namespace samples {

class stop_signals {
 public:
  stop_signals() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    if (pthread_sigmask(SIG_BLOCK, &set_, nullptr) != 0)
      throw std::runtime_error("pthread_sigmask");
    int fd = ::signalfd(-1, &set_, SFD_CLOEXEC);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "signalfd");
    fd_ = fd;
  }
  stop_signals(const stop_signals&) = delete;
  stop_signals& operator=(const stop_signals&) = delete;
  ~stop_signals() { ::close(fd_); }

  /// Waits for SIGINT or SIGTERM; returns its number.
  corio::task<int> wait() {
    auto in = corio::fd_stream::borrow(fd_);
    signalfd_siginfo info{};
    co_await in.read_exact(std::as_writable_bytes(std::span(&info, 1)));
    co_return static_cast<int>(info.ssi_signo);
  }

 private:
  sigset_t set_;
  int fd_ = -1;
};

/// Runs `work`; a signal cancels it. Returns true if it finished, false if a signal stopped it
/// (an exception from `work` propagates).
inline corio::task<bool> run_until_signal(stop_signals& signals, corio::task<> work) {
  auto job = corio::spawn(std::move(work));
  auto watcher = corio::spawn([](stop_signals& s, corio::join_handle<void>& job) -> corio::task<> {
    int sig = co_await s.wait();
    std::fprintf(stderr, "%s: stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    job.cancel();
  }(signals, job));
  bool finished = false;
  try {
    co_await job;
    finished = true;
  } catch (const corio::operation_cancelled&) {
  }
  watcher.cancel();
  try {
    co_await watcher;
  } catch (const corio::operation_cancelled&) {
  }
  co_return finished;
}

}  // namespace samples
