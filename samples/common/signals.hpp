// Clean exit on SIGINT and SIGTERM for the samples, and (opt-in) a task dump on SIGQUIT.
//
// stop_signals blocks both signals in the calling thread -- and so in every thread created later,
// the runtime's workers included -- and reads them from a signalfd through corio. run_until_signal
// runs the sample's work as a task and cancels it when a signal arrives: every task's destructors
// run, block_on returns, and main returns 0. With CORIO_DUMP_ON_SIGQUIT=1 in the environment,
// SIGQUIT (kill -QUIT, or Ctrl-\ on a terminal) prints every live task with its backtrace to
// stderr (corio::dump_current_tasks) and the sample goes on; without it SIGQUIT keeps its default
// action.
#pragma once

#include <corio/corio.hpp>

#include <fmt/format.h>

#include <sys/signalfd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace samples {

class stop_signals {
 public:
  stop_signals() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    const char* dump = std::getenv("CORIO_DUMP_ON_SIGQUIT");
    if (dump != nullptr && std::string_view(dump) == "1") sigaddset(&set_, SIGQUIT);
    if (pthread_sigmask(SIG_BLOCK, &set_, nullptr) != 0)
      throw std::runtime_error("pthread_sigmask");
    int fd = ::signalfd(-1, &set_, SFD_CLOEXEC);
    if (fd < 0) throw std::system_error(errno, std::generic_category(), "signalfd");
    fd_ = fd;
  }
  stop_signals(const stop_signals&) = delete;
  stop_signals& operator=(const stop_signals&) = delete;
  ~stop_signals() { ::close(fd_); }

  /// Waits for SIGINT or SIGTERM; returns its number. Answers SIGQUIT, if enabled, meanwhile.
  corio::task<int> wait() {
    auto in = corio::fd_stream::borrow(fd_);
    for (;;) {
      signalfd_siginfo info{};
      co_await in.read_exact(std::as_writable_bytes(std::span(&info, 1)));
      if (info.ssi_signo != SIGQUIT) co_return static_cast<int>(info.ssi_signo);
      std::string dump = corio::dump_current_tasks();
      std::fwrite(dump.data(), 1, dump.size(), stderr);
      std::fflush(stderr);
    }
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
