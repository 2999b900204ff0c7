// Shared doctest main for every corio test binary.
//
// - A watchdog aborts the process if the whole binary runs longer than CORIO_TEST_TIMEOUT seconds
//   (default 240), naming the test case that was running: a hang is a failure, never a stall.
// - After every test case the invariants of the test build are checked: no coroutine frame or
//   task header is alive (corio::detail::live_frames() == 0) and the process has as many open
//   file descriptors as before the test (rings, eventfds and sockets were all closed), and every
//   read pool is gone (each pooled buffer and pooled reader came back).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "invariants.hpp"

#include <corio/detail/frame_alloc.hpp>
#include <corio/detail/pooled_read.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

namespace {

std::mutex current_mutex;
std::string current_test = "(none)";
std::atomic<bool> invariant_failed{false};

struct invariant_listener : doctest::IReporter {
  explicit invariant_listener(const doctest::ContextOptions&) {}
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_run_end(const doctest::TestRunStats&) override {}
  void test_case_start(const doctest::TestCaseData& tc) override {
    {
      std::lock_guard lock(current_mutex);
      current_test = tc.m_name;
    }
    fds_before_ = corio::test::open_fd_count();
    fd_list_before_ = corio::test::describe_fds();
    frames_before_ = corio::detail::live_frames();
  }
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override {
    std::string name;
    {
      std::lock_guard lock(current_mutex);
      name = current_test;
    }
    long fds = corio::test::open_fd_count();
    long long frames = corio::detail::live_frames();
    long long pools = corio::detail::live_read_pools();
    if (pools != 0) {
      std::fprintf(stderr,
                   "INVARIANT: test \"%s\" left %lld read pools alive (pooled buffers "
                   "or readers not given back)\n",
                   name.c_str(), pools);
      invariant_failed = true;
    }
    if (frames != frames_before_) {
      std::fprintf(stderr, "INVARIANT: test \"%s\" left %lld live coroutine frames\n", name.c_str(),
                   frames - frames_before_);
      invariant_failed = true;
    }
    if (fds != fds_before_) {
      std::fprintf(stderr,
                   "INVARIANT: test \"%s\" changed the open fd count from %ld to %ld\n"
                   "  before:%s\n  after: %s\n",
                   name.c_str(), fds_before_, fds, fd_list_before_.c_str(),
                   corio::test::describe_fds().c_str());
      invariant_failed = true;
    }
  }
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}

  long fds_before_ = 0;
  std::string fd_list_before_;
  long long frames_before_ = 0;
};

}  // namespace

DOCTEST_REGISTER_LISTENER("corio-invariants", 1, invariant_listener);

int main(int argc, char** argv) {
  int limit = 240;
  if (const char* env = std::getenv("CORIO_TEST_TIMEOUT")) limit = std::atoi(env);
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  std::thread watchdog([&] {
    std::unique_lock lock(m);
    if (!cv.wait_for(lock, std::chrono::seconds(limit), [&] { return done; })) {
      std::lock_guard name_lock(current_mutex);
      std::fprintf(stderr, "WATCHDOG: no result after %d s; test case running: \"%s\"\n", limit,
                   current_test.c_str());
      std::fflush(stderr);
      std::abort();
    }
  });

  doctest::Context context(argc, argv);
  int rc = context.run();
  {
    std::lock_guard lock(m);
    done = true;
  }
  cv.notify_all();
  watchdog.join();
  if (invariant_failed && rc == 0) rc = 1;
  return rc;
}
