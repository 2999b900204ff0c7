// Zero-copy sends (tcp_stream::set_zero_copy_writes) against plain sends, on loopback.
//
//   zerocopy [--rounds R] [--mib M] [--chunks KIB,KIB,...]
//
// For each chunk size, every round sends M MiB over a fresh loopback TCP connection with
// write_all of one chunk-sized buffer, once with plain sends and once with zero-copy sends, in
// alternating order (copy first in odd rounds). The receiver is a forked child process that
// reads into a 1 MiB buffer with recv(2) and discards. Each run prints its GiB/s and the
// sender's CPU time per GiB (user + system of this process, its io_uring worker threads
// included); the summary is the median over the rounds of the per-round ratios zero-copy /
// copy. Run it pinned, sender and receiver on different CPUs: `taskset -c 0 zerocopy` pins
// the sender, and the receiver moves itself to the next CPU.
#include <corio/corio.hpp>

#include <fmt/format.h>

#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

using corio::task;
using corio::net::tcp_stream;

namespace {

double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  auto s = [](timeval t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return s(u.ru_utime) + s(u.ru_stime);
}

// The receiver: accepts connections on `listen_fd` and drains each until EOF, until killed.
[[noreturn]] void receive_forever(int listen_fd) {
  cpu_set_t set;
  if (::sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) == 1) {
    int cpu = 0;
    while (!CPU_ISSET(cpu, &set)) ++cpu;
    long n = ::sysconf(_SC_NPROCESSORS_ONLN);
    CPU_ZERO(&set);
    CPU_SET(static_cast<int>((cpu + 1) % n), &set);
    (void)::sched_setaffinity(0, sizeof set, &set);
  }
  std::vector<char> buf(1 << 20);
  for (;;) {
    int c = ::accept(listen_fd, nullptr, nullptr);
    if (c < 0) ::_exit(1);
    while (::recv(c, buf.data(), buf.size(), 0) > 0) {
    }
    ::close(c);
  }
}

struct result {
  double gib_s;
  double cpu_s_per_gib;
};

task<result> send_once(std::uint16_t port, std::size_t chunk, std::size_t total, bool zero_copy) {
  auto s = co_await tcp_stream::connect(corio::net::socket_address::from_ip("127.0.0.1", port));
  if (zero_copy) s.set_zero_copy_writes(1);
  std::vector<std::byte> buf(chunk, std::byte{0x5a});
  double cpu0 = cpu_seconds();
  auto t0 = std::chrono::steady_clock::now();
  for (std::size_t sent = 0; sent < total; sent += chunk) co_await s.write_all(buf);
  s.shutdown(corio::net::shutdown_how::write);
  // The receiver closes once it has read everything: the run ends when the bytes arrived.
  std::byte b[1];
  (void)co_await s.read(b);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double gib = static_cast<double>(total) / (1 << 30);
  co_return result{gib / secs, (cpu_seconds() - cpu0) / gib};
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::vector<std::size_t> parse_chunks(std::string_view s) {
  std::vector<std::size_t> out;
  while (!s.empty()) {
    std::size_t comma = s.find(',');
    out.push_back(std::stoul(std::string(s.substr(0, comma))) * 1024);
    s = comma == std::string_view::npos ? std::string_view() : s.substr(comma + 1);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int rounds = 6;
  std::size_t mib = 1024;
  std::vector<std::size_t> chunks = {16 * 1024, 64 * 1024, 256 * 1024, 1024 * 1024};
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--rounds" && i + 1 < argc) {
      rounds = std::atoi(argv[++i]);
    } else if (a == "--mib" && i + 1 < argc) {
      mib = std::stoul(argv[++i]);
    } else if (a == "--chunks" && i + 1 < argc) {
      chunks = parse_chunks(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: zerocopy [--rounds R] [--mib M] [--chunks KIB,KIB,...]\n");
      return 2;
    }
  }
  if (rounds < 1 || mib == 0 || chunks.empty()) {
    std::fprintf(stderr, "zerocopy: --rounds, --mib and --chunks must be positive\n");
    return 2;
  }

  int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (lfd < 0 || ::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(lfd, 16) != 0 || ::getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::perror("zerocopy: listen");
    return 1;
  }
  auto port = ntohs(addr.sin_port);
  pid_t child = ::fork();
  if (child < 0) {
    std::perror("zerocopy: fork");
    return 1;
  }
  if (child == 0) receive_forever(lfd);
  ::close(lfd);

  int status = 0;
  try {
    corio::runtime rt{corio::runtime_options{.workers = 1}};
    if (!rt.features().op_send_zc) {
      std::fprintf(stderr, "zerocopy: this kernel has no IORING_OP_SEND_ZC: both columns copy\n");
    }
    fmt::print(
        "| chunk | copy GiB/s per round | zero-copy GiB/s per round | GiB/s zc/copy "
        "(median) | CPU per GiB zc/copy (median) |\n|---|---|---|---:|---:|\n");
    for (std::size_t chunk : chunks) {
      std::size_t total = mib << 20;
      total -= total % chunk;
      std::vector<double> copy_rate, zc_rate, rate_ratio, cpu_ratio;
      for (int r = 0; r < rounds; ++r) {
        result copy{}, zc{};
        for (int k = 0; k < 2; ++k) {
          bool zero_copy = (k == 1) == (r % 2 == 0);
          result x = rt.block_on(send_once(port, chunk, total, zero_copy));
          (zero_copy ? zc : copy) = x;
        }
        copy_rate.push_back(copy.gib_s);
        zc_rate.push_back(zc.gib_s);
        rate_ratio.push_back(zc.gib_s / copy.gib_s);
        cpu_ratio.push_back(zc.cpu_s_per_gib / copy.cpu_s_per_gib);
      }
      auto list = [](const std::vector<double>& v) {
        std::string s;
        for (double x : v) s += fmt::format("{}{:.2f}", s.empty() ? "" : " ", x);
        return s;
      };
      fmt::print("| {} KiB | {} | {} | {:.3f} | {:.3f} |\n", chunk / 1024, list(copy_rate),
                 list(zc_rate), median(rate_ratio), median(cpu_ratio));
      std::fflush(stdout);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "zerocopy: %s\n", e.what());
    status = 1;
  }
  ::kill(child, SIGTERM);
  ::waitpid(child, nullptr, 0);
  return status;
}
