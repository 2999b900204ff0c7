// Memory and scaling figures of the speed issue, one mode per run (a fresh process each, so that
// resident memory starts from the same place):
//
//   footprint sleepers N      N tasks in sleep_for: resident bytes per sleeping task
//   footprint connections N   N idle TCP connections on loopback, each served by a task reading
//                             into a 64-byte buffer: resident bytes per connection, beyond the
//                             buffer (the clients are plain sockets in a forked child process)
//   footprint connections-pooled N   the same with read_some_pooled instead (no buffer of the
//                             task's own: the worker's pool holds none while the peer is idle)
//   footprint fib N CUTOFF W  fork-join: fib(N), spawning both halves above CUTOFF, on W workers;
//                             prints the best wall time of 5 runs
//
// Resident memory is VmRSS from /proc/self/status, read before the tasks exist and once they are
// all waiting; the difference is divided by N. It counts every page the tasks touched (frames,
// task headers, allocator slack, the worker's timer heap), not what they reserved.
#include <corio/corio.hpp>

#include <fmt/format.h>

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

using corio::task;
using namespace std::chrono_literals;

namespace {

long rss_bytes() {
  std::ifstream f("/proc/self/status");
  std::string key;
  while (f >> key) {
    if (key == "VmRSS:") {
      long kib = 0;
      f >> kib;
      return kib * 1024;
    }
    f.ignore(1 << 20, '\n');
  }
  throw std::runtime_error("no VmRSS in /proc/self/status");
}

void raise_fd_limit(long want) {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) != 0) throw std::runtime_error("getrlimit");
  if (r.rlim_cur >= static_cast<rlim_t>(want)) return;
  r.rlim_cur = static_cast<rlim_t>(want);
  if (r.rlim_max < r.rlim_cur) r.rlim_max = r.rlim_cur;  // allowed to root (CAP_SYS_RESOURCE)
  if (::setrlimit(RLIMIT_NOFILE, &r) != 0) {
    throw std::runtime_error(fmt::format("need {} fds; the hard limit is {}", want, r.rlim_max));
  }
}

task<> sleeper(std::atomic<long>& asleep) {
  ++asleep;
  co_await corio::sleep_for(1h);
}

task<> sleepers(long n) {
  long before = rss_bytes();
  std::atomic<long> asleep{0};
  for (long i = 0; i < n; ++i) corio::spawn(sleeper(asleep)).detach();
  while (asleep.load() < n) co_await corio::sleep_for(1ms);
  long after = rss_bytes();
  fmt::print("sleepers={} rss_delta={} bytes_per_task={:.0f}\n", n, after - before,
             static_cast<double>(after - before) / static_cast<double>(n));
  // Returning ends the session: every sleeper is destroyed.
}

constexpr std::size_t conn_buffer = 64;

bool pooled_reads = false;

task<> idle_server(corio::net::tcp_stream s, std::atomic<long>& served) {
  ++served;
  if (pooled_reads) {
    for (;;) {
      corio::pooled_buffer b = co_await s.read_some_pooled();
      if (b.empty()) co_return;
    }
  }
  std::array<std::byte, conn_buffer> buf;
  while (co_await s.read(buf) > 0) {
  }
}

// The clients run in a forked child (the runtime has one worker: this thread, so nothing else
// runs at the fork), which keeps this process's fd count and resident memory to the server side.
task<> connections(long n) {
  raise_fd_limit(n + 100);
  auto listener = corio::net::tcp_listener::bind("127.0.0.1:0");
  std::uint16_t port = listener.local_address().port();
  std::atomic<long> served{0};
  auto acceptor =
      corio::spawn([](corio::net::tcp_listener& l, long n, std::atomic<long>& served) -> task<> {
        auto in = l.incoming();
        for (long i = 0; i < n; ++i) {
          auto c = co_await in.next();
          if (!c) co_return;
          corio::spawn(idle_server(std::move(c->stream), served)).detach();
        }
      }(listener, n, served));
  // Let the listener, the acceptor and the worker's structures settle before the baseline.
  co_await corio::sleep_for(10ms);
  long before = rss_bytes();
  int quit[2];
  if (::pipe2(quit, O_CLOEXEC) != 0)
    throw std::system_error(errno, std::generic_category(), "pipe");
  pid_t child = ::fork();
  if (child < 0) throw std::system_error(errno, std::generic_category(), "fork");
  if (child == 0) {
    ::close(quit[1]);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (long i = 0; i < n; ++i) {
      int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) ::_exit(3);
    }
    char c;
    (void)::read(quit[0], &c, 1);  // until the parent closes its end
    ::_exit(0);
  }
  ::close(quit[0]);
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (served.load() < n) {
    int status = 0;
    if (::waitpid(child, &status, WNOHANG) == child) {
      throw std::runtime_error(fmt::format("the client process failed (status {})", status));
    }
    if (std::chrono::steady_clock::now() > deadline) throw std::runtime_error("clients too slow");
    co_await corio::sleep_for(1ms);
  }
  co_await corio::sleep_for(10ms);
  long after = rss_bytes();
  double per = static_cast<double>(after - before) / static_cast<double>(n);
  double buffer = pooled_reads ? 0.0 : static_cast<double>(conn_buffer);
  fmt::print(
      "connections={} reads={} rss_delta={} bytes_per_connection={:.0f} "
      "beyond_buffer={:.0f}\n",
      n, pooled_reads ? "pooled" : "copy", after - before, per, per - buffer);
  ::close(quit[1]);  // the child exits, its sockets close, every server task reads EOF
  int status = 0;
  ::waitpid(child, &status, 0);
  co_await acceptor;
}

task<long> fib(int n, int cutoff) {
  if (n < 2) co_return n;
  if (n <= cutoff) {
    // Sequential below the cutoff: plain recursion, no task per call.
    auto seq = [](auto& self, int k) -> long {
      return k < 2 ? k : self(self, k - 1) + self(self, k - 2);
    };
    co_return seq(seq, n);
  }
  auto a = corio::spawn(fib(n - 1, cutoff));
  long b = co_await fib(n - 2, cutoff);
  co_return co_await a + b;
}

int usage() {
  std::fputs(
      "usage: footprint sleepers N | connections N | connections-pooled N | fib N CUTOFF W\n"
      "  sleepers N      resident bytes per task sleeping in sleep_for (1 worker)\n"
      "  connections N   resident bytes per idle loopback TCP connection (1 worker)\n"
      "  connections-pooled N   the same, the server reading with read_some_pooled\n"
      "  fib N C W       fork-join fib(N), spawning above cutoff C, on W workers: best of 5\n",
      stderr);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return usage();
  std::string mode = argv[1];
  try {
    if (mode == "sleepers") {
      corio::run(sleepers(std::atol(argv[2])), {.workers = 1});
    } else if (mode == "connections" || mode == "connections-pooled") {
      pooled_reads = mode == "connections-pooled";
      corio::run(connections(std::atol(argv[2])), {.workers = 1});
    } else if (mode == "fib" && argc == 5) {
      int n = std::atoi(argv[2]);
      int cutoff = std::atoi(argv[3]);
      unsigned workers = static_cast<unsigned>(std::atoi(argv[4]));
      corio::runtime rt{{.workers = workers}};
      double best = 1e30;
      long value = 0;
      for (int rep = 0; rep < 5; ++rep) {
        auto t0 = std::chrono::steady_clock::now();
        value = rt.block_on(fib(n, cutoff));
        std::chrono::duration<double, std::milli> ms = std::chrono::steady_clock::now() - t0;
        best = std::min(best, ms.count());
      }
      auto t = rt.stats().total();
      fmt::print(
          "fib={} cutoff={} workers={} value={} best_ms={:.2f} steals={} parks={} "
          "wakeups={} polled={}\n",
          n, cutoff, workers, value, best, t.steals, t.parks, t.wakeups_sent, t.tasks_polled);
    } else {
      return usage();
    }
  } catch (const std::exception& e) {
    fmt::print(stderr, "footprint: {}\n", e.what());
    return 1;
  }
  return 0;
}
