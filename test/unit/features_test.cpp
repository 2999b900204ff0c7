// runtime::features() and what the runtime says when the kernel lacks something.
// Invariant: every reported feature is the kernel's answer, a runtime built without an optional
// feature still works, and one that cannot work names the missing feature and the fix.
#include <doctest/doctest.h>

#include "../support/invariants.hpp"
#include "../support/net.hpp"

#include <corio/corio.hpp>

#include <fmt/format.h>

#include <linux/membarrier.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

using corio::task;
using corio::test::disable_features;
using namespace std::chrono_literals;

namespace {

// The running kernel is at least major.minor (from uname, independently of the probe).
bool kernel_at_least(int major, int minor) {
  utsname u{};
  if (uname(&u) != 0) return false;
  int a = 0, b = 0;
  if (std::sscanf(u.release, "%d.%d", &a, &b) != 2) return false;
  return a > major || (a == major && b >= minor);
}

task<int> child(int x) {
  co_await corio::yield_now();
  co_await corio::sleep_for(1ms);
  co_return x;
}

// Tasks spread over the workers and wake each other: exercises the wake-up path.
task<long> spread(int n) {
  std::vector<corio::join_handle<int>> hs;
  for (int i = 0; i < n; ++i) hs.push_back(corio::spawn(child(i)));
  long sum = 0;
  for (auto& h : hs) sum += co_await h;
  co_return sum;
}

// Runs `body` in a forked child and returns its exit status (or -signal), with what it wrote
// to `out` (a pipe) in `text`.
template <class F>
int in_child(F body, std::string& text) {
  int p[2];
  REQUIRE(pipe(p) == 0);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    close(p[0]);
    alarm(60);  // a hang is a failure (SIGALRM), not a stall
    int rc = 3;
    std::string msg;
    try {
      rc = body(msg);
    } catch (const std::exception& e) {
      msg = e.what();
      rc = 2;
    }
    (void)!write(p[1], msg.data(), msg.size());
    _exit(rc);
  }
  close(p[1]);
  char buf[4096];
  ssize_t n;
  while ((n = read(p[0], buf, sizeof buf)) > 0) text.append(buf, static_cast<std::size_t>(n));
  close(p[0]);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

}  // namespace

TEST_SUITE("features") {
  TEST_CASE("features() reports what this kernel offers") {
    corio::runtime rt{{.workers = 1}};
    const corio::kernel_features& f = rt.features();
    utsname u{};
    REQUIRE(uname(&u) == 0);
    CHECK(f.kernel_release == u.release);
    // What corio refuses to run without.
    CHECK(f.cancel_any);
    CHECK(f.ext_arg);
    CHECK_FALSE(f.sqpoll);
    // Present since 5.19, corio's minimum.
    CHECK(f.msg_ring);
    CHECK(f.register_ring_fd);
    CHECK(f.op_read);
    CHECK(f.op_send);
    CHECK(f.op_recv);
    CHECK(f.op_accept);
    CHECK(f.op_socket);
    CHECK(f.multishot_accept);
    CHECK(f.buffer_ring);
    CHECK(f.taskrun_flag);
    // The kernel's own answer (MEMBARRIER_CMD_QUERY), independently of the runtime's probe.
    long commands = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    CHECK(f.membarrier == (commands > 0 && (commands & MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0));
    if (kernel_at_least(6, 1)) {
      CHECK(f.single_issuer);
      CHECK(f.defer_taskrun);
      CHECK_FALSE(f.coop_taskrun);  // only the fallback when DEFER_TASKRUN is refused
      CHECK(f.op_send_zc);
      CHECK(f.op_sendmsg_zc);
    } else {
      MESSAGE("kernel older than 6.1: DEFER_TASKRUN and zero-copy send not checked");
    }
  }

  TEST_CASE("with one-entry rings the probe still runs every trial") {
    corio::runtime rt{{.workers = 2, .ring_entries = 1}};
    CHECK(rt.features().cancel_any);
    CHECK(rt.features().multishot_accept);
    CHECK(rt.features().buffer_ring);
    CHECK(rt.block_on(spread(20)) == 19 * 20 / 2);
  }

  TEST_CASE("an SQPOLL runtime reports SQPOLL and no DEFER_TASKRUN") {
    corio::runtime rt{{.workers = 1, .sqpoll = true}};
    CHECK(rt.features().sqpoll);
    CHECK_FALSE(rt.features().defer_taskrun);
    CHECK(rt.block_on(child(5)) == 5);
  }

  TEST_CASE("features print as one line with every field name, with fmt and operator<<") {
    corio::runtime rt{{.workers = 1}};
    std::string a = fmt::format("{}", rt.features());
    std::ostringstream os;
    os << rt.features();
    CHECK(a == os.str());
    CHECK(a == corio::to_string(rt.features()));
    CHECK(a.find('\n') == std::string::npos);
    CHECK(a.rfind("kernel=" + rt.features().kernel_release + " ", 0) == 0);
    for (const char* name :
         {"sqpoll=no",         "single_issuer=",    "defer_taskrun=", "coop_taskrun=",
          "taskrun_flag=yes",  "msg_ring=yes",      "cancel_any=yes", "ext_arg=yes",
          "register_ring_fd=", "op_read=yes",       "op_write=",      "op_send=",
          "op_recv=",          "op_sendmsg=",       "op_recvmsg=",    "op_accept=",
          "op_connect=",       "op_shutdown=",      "op_socket=",     "op_send_zc=",
          "op_sendmsg_zc=",    "op_openat=",        "op_close=",      "op_statx=",
          "op_fsync=",         "op_fallocate=",     "op_splice=",     "op_provide_buffers=",
          "op_uring_cmd=",     "multishot_accept=", "buffer_ring=",   "membarrier="}) {
      CHECK_MESSAGE(a.find(std::string(" ") + name) != std::string::npos, name);
    }
    if (kernel_at_least(6, 1)) {
      CHECK(a.find(" single_issuer=yes") != std::string::npos);
      CHECK(a.find(" defer_taskrun=yes") != std::string::npos);
    }
    corio::kernel_features none;
    CHECK(corio::to_string(none).find(" msg_ring=no") != std::string::npos);
  }

  TEST_CASE("without MSG_RING the workers wake each other through their eventfds") {
    disable_features d("msg_ring");
    corio::runtime rt{{.workers = 4}};
    CHECK_FALSE(rt.features().msg_ring);
    CHECK(rt.block_on(spread(200)) == 199 * 200 / 2);  // a lost wake-up hangs (watchdog)
  }

  TEST_CASE("without DEFER_TASKRUN the rings fall back to COOP_TASKRUN, then to no task-run flag") {
    {
      disable_features d("defer_taskrun");
      corio::runtime rt{{.workers = 2}};
      CHECK_FALSE(rt.features().defer_taskrun);
      CHECK(rt.features().coop_taskrun);
      CHECK(rt.features().taskrun_flag);
      CHECK(rt.block_on(spread(50)) == 49 * 50 / 2);
    }
    {
      disable_features d("defer_taskrun,single_issuer,taskrun_flag,register_ring_fd");
      corio::runtime rt{{.workers = 2}};
      const corio::kernel_features& f = rt.features();
      CHECK_FALSE(f.defer_taskrun);
      CHECK_FALSE(f.single_issuer);
      CHECK_FALSE(f.coop_taskrun);
      CHECK_FALSE(f.taskrun_flag);
      CHECK_FALSE(f.register_ring_fd);
      CHECK(rt.block_on(spread(50)) == 49 * 50 / 2);
    }
  }

  // One zero-copy send has two CQEs for its SQE; a plain send has one. On one worker nothing
  // else makes CQEs without SQEs, so equal counts show that every write went out as a plain send.
  TEST_CASE("without SEND_ZC, zero-copy writes go out as plain sends") {
    disable_features d("send_zc");
    corio::runtime rt{{.workers = 1}};
    CHECK_FALSE(rt.features().op_send_zc);
    rt.block_on([](corio::runtime& rt) -> corio::task<> {
      auto l = corio::net::tcp_listener::bind("127.0.0.1:0");
      auto c = co_await corio::net::tcp_stream::connect(l.local_address());
      auto srv = co_await l.accept();
      c.set_zero_copy_writes(1);
      long before = corio::test::cqes_beyond_sqes(rt);
      std::vector<std::byte> out = corio::test::pattern(1 << 20, 3), in(out.size());
      auto writer = corio::spawn(
          [](corio::net::tcp_stream& c, std::vector<std::byte>& out) -> corio::task<std::size_t> {
            co_return co_await c.write_all(out);
          }(c, out));
      CHECK(co_await srv.stream.read_exact(in) == in.size());
      CHECK(co_await writer == out.size());
      CHECK(in == out);
      CHECK(corio::test::cqes_beyond_sqes(rt) == before);
    }(rt));
  }

  TEST_CASE("a kernel without what corio needs gets a message naming it and the fix") {
    for (auto nw : {std::pair{"cancel_any", "IORING_ASYNC_CANCEL_ANY"},
                    std::pair{"ext_arg", "IORING_FEAT_EXT_ARG"}}) {
      const char* names = nw.first;
      const char* want = nw.second;
      CAPTURE(names);
      disable_features d(names);
      std::string what;
      int code = 0;
      try {
        corio::runtime rt{{.workers = 1}};
      } catch (const std::system_error& e) {
        what = e.what();
        code = e.code().value();
      }
      CHECK(code == ENOSYS);
      CHECK(what.find(want) != std::string::npos);
      CHECK(what.find("5.19") != std::string::npos);
      CHECK(what.find("upgrade the kernel") != std::string::npos);
    }
    {
      disable_features d("cancel_any,ext_arg");
      std::string what;
      try {
        corio::runtime rt{{.workers = 1}};
      } catch (const std::system_error& e) {
        what = e.what();
      }
      CHECK(what.find("IORING_ASYNC_CANCEL_ANY") != std::string::npos);
      CHECK(what.find("IORING_FEAT_EXT_ARG") != std::string::npos);
    }
  }

  TEST_CASE("an unknown name in CORIO_TEST_DISABLE_FEATURES is rejected") {
    disable_features d("msg_ring,no_such_feature");
    std::string what;
    try {
      corio::runtime rt{{.workers = 1}};
    } catch (const std::invalid_argument& e) {
      what = e.what();
    }
    CHECK(what.find("'no_such_feature'") != std::string::npos);
  }

  TEST_CASE("with RLIMIT_MEMLOCK = 0 a privileged runtime works, an unprivileged one says why") {
    // CAP_IPC_LOCK exempts a process from the limit. Without it, kernels before 5.12 and recent
    // ones (6.18) charge ring memory to RLIMIT_MEMLOCK, those in between to the memory cgroup.
    auto body = [](bool unprivileged) {
      return [unprivileged](std::string& msg) {
        rlimit zero{0, 0};
        if (setrlimit(RLIMIT_MEMLOCK, &zero) != 0) {
          msg = "setrlimit failed";
          return 4;
        }
        if (unprivileged && geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) {
          msg = "cannot become nobody";
          return 5;
        }
        try {
          // One worker: the calling thread. The child of a multi-threaded process must not start
          // threads (ThreadSanitizer refuses it, and only async-signal-safe calls are promised).
          corio::runtime rt{{.workers = 1}};
          msg = corio::to_string(rt.features());
          return rt.block_on(spread(20)) == 19 * 20 / 2 ? 0 : 1;
        } catch (const std::system_error& e) {
          msg = e.what();
          return e.code().value() == ENOMEM ? 6 : 7;
        }
      };
    };
    if (geteuid() == 0) {
      std::string text;
      int rc = in_child(body(false), text);
      INFO(text);
      CHECK(rc == 0);
      CHECK(text.find("buffer_ring=yes") != std::string::npos);
    }
    std::string text;
    int rc = in_child(body(true), text);
    INFO(text);
    if (rc == 6) {  // refused: the message names the limit, its value and the fixes
      CHECK(text.find("RLIMIT_MEMLOCK (now 0 bytes)") != std::string::npos);
      CHECK(text.find("ulimit -l") != std::string::npos);
      CHECK(text.find("runtime_options::ring_entries") != std::string::npos);
    } else {
      CHECK(rc == 0);
      // A refused buffer-ring registration (ENOMEM) still shows the kernel knows it.
      CHECK(text.find("buffer_ring=yes") != std::string::npos);
    }
  }
}
