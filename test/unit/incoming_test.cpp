// Accepting under pressure: accepts cancelled by timeouts while connections arrive (T03), fd
// exhaustion at a multishot accept (T12), and connect-close churn with resets (T14).
// Invariants: every connection the kernel accepted reaches the program or is closed (clients see
// data or an end, never silence); an exhausted process pauses accepting instead of spinning and
// resumes by itself; the per-test fd check finds nothing left open.
#include <doctest/doctest.h>

#include "../support/invariants.hpp"
#include "../support/net.hpp"

#include <corio/corio.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <system_error>
#include <thread>
#include <vector>

using corio::task;
using namespace corio::net;
using namespace std::chrono_literals;

namespace {

sockaddr_in native_v4(const socket_address& a) {
  sockaddr_in out{};
  std::memcpy(&out, a.native(), sizeof out);
  return out;
}

/// A blocking client socket connected to `to`, with a receive timeout; -1 if connect failed.
int blocking_connect(const sockaddr_in& to, std::chrono::milliseconds recv_timeout) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  timeval tv{0, static_cast<suseconds_t>(recv_timeout.count() * 1000)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

/// An RLIMIT_NOFILE under which exactly `n` more fds can be opened: the limit bounds fd numbers,
/// and a new fd takes the lowest free number.
rlim_t limit_allowing(int n) {
  int fd = 0;
  for (int free_seen = 0;; ++fd) {
    if (::fcntl(fd, F_GETFD) < 0 && errno == EBADF && ++free_seen == n) break;
  }
  return static_cast<rlim_t>(fd + 1);
}

/// Lowers RLIMIT_NOFILE for its lifetime (restored on every path, a failed check included).
class fd_limit {
 public:
  explicit fd_limit(int more) {
    getrlimit(RLIMIT_NOFILE, &old_);
    rlimit low = old_;
    low.rlim_cur = limit_allowing(more);
    if (setrlimit(RLIMIT_NOFILE, &low) != 0)
      throw std::system_error(errno, std::generic_category());
  }
  ~fd_limit() { restore(); }
  fd_limit(const fd_limit&) = delete;
  fd_limit& operator=(const fd_limit&) = delete;
  void restore() noexcept { setrlimit(RLIMIT_NOFILE, &old_); }

 private:
  rlimit old_{};
};

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  auto sec = [](timeval t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return sec(u.ru_utime) + sec(u.ru_stime);
}

}  // namespace

TEST_SUITE("incoming") {
  TEST_CASE("accepts cancelled by short timeouts lose no connection (T03)") {
    // The server accepts with a 0-1 ms timeout in a loop; each accepted connection gets one byte.
    // An accept that completes as its timeout cancels it must hand its connection over (or close
    // it): a client that gets neither the byte nor an end would wait for its 2 s timeout.
    const long rounds = corio::test::scaled(1000);
    corio::runtime rt{{.workers = 2}};
    auto outcome = rt.block_on([](long rounds) -> task<std::pair<long, long>> {
      auto l = tcp_listener::bind("127.0.0.1:0");
      sockaddr_in to = native_v4(l.local_address());
      std::atomic<bool> done{false};
      std::atomic<long> served_seen{0}, silent{0};
      std::thread client([&] {
        for (long i = 0; i < rounds; ++i) {
          // Connects spread over the accept timeouts, so that many land as one expires.
          std::this_thread::sleep_for(std::chrono::microseconds(i % 7 * 150));
          int fd = blocking_connect(to, 2s);
          if (fd < 0) {
            ++silent;
            continue;
          }
          char b = 0;
          ssize_t n = ::recv(fd, &b, 1, 0);
          if (n == 1 && b == 'x') {
            ++served_seen;
          } else if (n < 0 && errno == EAGAIN) {
            ++silent;  // neither data nor an end: a connection was lost
          }
          ::close(fd);
        }
        done = true;
      });
      long timeouts = 0;
      unsigned seed = 1;
      while (!done.load()) {
        seed = seed * 1103515245u + 12345u;
        auto limit = std::chrono::microseconds((seed >> 8) % 1000);
        try {
          auto a = co_await corio::timeout(limit, l.accept());
          co_await a.stream.write_all(corio::as_bytes("x"));
        } catch (const corio::timed_out&) {
          ++timeouts;
        }
      }
      client.join();
      CHECK(silent.load() == 0);
      co_return std::pair{served_seen.load(), timeouts};
    }(rounds));
    CHECK(outcome.first == rounds);
    MESSAGE("accept timeouts: " << outcome.second);
    CHECK(rt.stats().total().ops_in_flight == 0);
  }

  TEST_CASE("running out of fds pauses incoming with a back-off; it resumes by itself (T12)") {
    corio::runtime rt{{.workers = 2}};
    rt.block_on([](corio::runtime& rt) -> task<> {
      constexpr int clients = 100;
      auto l = tcp_listener::bind("127.0.0.1:0", 512);
      sockaddr_in to = native_v4(l.local_address());
      // The client sockets exist before the limit is lowered; connecting needs no new fd.
      std::vector<int> socks;
      for (int i = 0; i < clients; ++i) {
        socks.push_back(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        REQUIRE(socks.back() >= 0);
      }
      // The kernel reads the limit when an accept is prepared: lower it before incoming() arms.
      fd_limit limit(10);
      std::atomic<int> accepted{0};
      std::vector<tcp_stream> held;  // the server holds every connection
      auto server = corio::spawn(
          [](tcp_listener& l, std::vector<tcp_stream>& held, std::atomic<int>& accepted) -> task<> {
            auto in = l.incoming();
            while (auto c = co_await in.next()) {
              held.push_back(std::move(c->stream));
              ++accepted;
            }
          }(l, held, accepted));

      co_await corio::sleep_for(20ms);  // the multishot accept is armed
      std::thread client([&] {
        for (int fd : socks) ::connect(fd, reinterpret_cast<const sockaddr*>(&to), sizeof to);
      });
      client.join();
      co_await corio::sleep_for(300ms);
      int while_limited = accepted.load();
      CHECK(while_limited > 0);
      CHECK(while_limited < clients);

      // Held at the limit, the server must not spin: the back-off reaches 1 s between attempts.
      double cpu0 = cpu_seconds();
      auto pauses0 = rt.stats().total().accept_pauses;
      co_await corio::sleep_for(1500ms);
      double cpu = cpu_seconds() - cpu0;
      auto pauses = rt.stats().total().accept_pauses - pauses0;
      MESSAGE("cpu while at the limit: " << cpu << " s; accept pauses: " << pauses);
      CHECK(cpu < 0.3);
      CHECK(pauses >= 1);
      CHECK(pauses <= 5);  // the delay doubles up to 1 s: no storm
      CHECK(accepted.load() == while_limited);

      limit.restore();
      auto deadline = std::chrono::steady_clock::now() + 3s;
      while (accepted.load() < clients && std::chrono::steady_clock::now() < deadline) {
        co_await corio::sleep_for(10ms);
      }
      CHECK(accepted.load() == clients);
      server.cancel();
      try {
        co_await server;
      } catch (const corio::operation_cancelled&) {
      }
      held.clear();
      for (int fd : socks) ::close(fd);
    }(rt));
  }

  TEST_CASE(
      "connect-close churn with resets: every connection accepted, the listener lives (T14)") {
    const int per_thread = static_cast<int>(corio::test::scaled(2000));
    corio::runtime rt{{.workers = 2}};
    rt.block_on([](int per_thread) -> task<> {
      auto l = tcp_listener::bind("127.0.0.1:0");
      sockaddr_in to = native_v4(l.local_address());
      std::atomic<long> accepted{0};
      auto server = corio::spawn([](tcp_listener& l, std::atomic<long>& accepted) -> task<> {
        auto in = l.incoming();
        while (auto c = co_await in.next()) ++accepted;  // and closed at once
      }(l, accepted));
      std::atomic<long> connected{0}, failed{0};
      std::vector<std::thread> clients;
      for (int t = 0; t < 2; ++t) {
        clients.emplace_back([&, t] {
          for (int i = 0; i < per_thread; ++i) {
            int fd = blocking_connect(to, 1s);
            if (fd < 0) {
              ++failed;
              continue;
            }
            ++connected;
            if ((i + t) % 10 == 0) corio::test::reset_on_close(fd);
            ::close(fd);
          }
        });
      }
      for (auto& c : clients) c.join();
      auto deadline = std::chrono::steady_clock::now() + 5s;
      while (accepted.load() < connected.load() && std::chrono::steady_clock::now() < deadline) {
        co_await corio::sleep_for(5ms);
      }
      CHECK(failed.load() == 0);
      CHECK(accepted.load() == connected.load());
      // The listener still works after the churn.
      auto c = co_await tcp_stream::connect(l.local_address());
      while (accepted.load() < connected.load() + 1 &&
             std::chrono::steady_clock::now() < deadline) {
        co_await corio::sleep_for(5ms);
      }
      CHECK(accepted.load() == connected.load() + 1);
      server.cancel();
      try {
        co_await server;
      } catch (const corio::operation_cancelled&) {
      }
    }(per_thread));
  }
}
