// An echo load client (May's echo_client): many connections send messages and verify that every
// byte comes back, then it prints messages per second, MiB/s and round-trip latencies.
//
//   echo_client -a ADDR -c CONNECTIONS -l LENGTH -d SECONDS -t WORKERS [-p DEPTH]
//               (or --port N for 127.0.0.1:N)
//
// Each connection writes DEPTH messages back to back, reads the DEPTH echoes, checks them byte for
// byte, and repeats until the time is up. The time counts from when every connection is
// established (like the C reference client's measured window), so set-up is not measured. The
// exit status is non-zero on any error, wrong byte or missing echo. On a terminal it shows
// progress once a second. SIGINT or SIGTERM ends the run early: the summary covers what was
// measured until then.
#include "common/cli.hpp"
#include "common/signals.hpp"

#include <corio/corio.hpp>

#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

using namespace corio::net;
using namespace std::chrono_literals;
using clk = std::chrono::steady_clock;

namespace {

// A log-linear latency histogram: 32 sub-buckets per power of two (under 3% error).
class histogram {
 public:
  void add(std::uint64_t ns) noexcept {
    ++counts_[index(ns)];
    max_ = std::max(max_, ns);
    ++n_;
  }
  void merge(const histogram& o) noexcept {
    for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += o.counts_[i];
    max_ = std::max(max_, o.max_);
    n_ += o.n_;
  }
  double percentile_us(double p) const noexcept {
    if (n_ == 0) return 0;
    auto target = static_cast<std::uint64_t>(std::ceil(p * static_cast<double>(n_)));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= target) return static_cast<double>(upper(i)) / 1000.0;
    }
    return static_cast<double>(max_) / 1000.0;
  }
  double max_us() const noexcept { return static_cast<double>(max_) / 1000.0; }

 private:
  static constexpr int sub_bits = 5;
  static std::size_t index(std::uint64_t v) noexcept {
    if (v < (1u << sub_bits)) return static_cast<std::size_t>(v);
    int msb = 63 - __builtin_clzll(v);
    std::uint64_t sub = (v >> (msb - sub_bits)) & ((1u << sub_bits) - 1);
    return static_cast<std::size_t>((msb - sub_bits + 1) << sub_bits) + sub;
  }
  static std::uint64_t upper(std::size_t i) noexcept {
    if (i < (1u << sub_bits)) return i;
    std::size_t shift = (i >> sub_bits) - 1;
    return ((std::uint64_t{1} << sub_bits) + (i & ((1u << sub_bits) - 1)) + 1) << shift;
  }
  std::vector<std::uint64_t> counts_ = std::vector<std::uint64_t>(64 << sub_bits);
  std::uint64_t max_ = 0;
  std::uint64_t n_ = 0;
};

struct settings {
  socket_address addr;
  std::size_t connections = 50;
  std::size_t length = 64;
  double seconds = 5;
  std::size_t depth = 1;
};

struct totals {
  std::atomic<std::uint64_t> messages{0};
  std::atomic<std::uint64_t> errors{0};
  std::atomic<std::int64_t> start{0};  // steady_clock ticks: when the measured window opened
  std::mutex m;
  std::vector<std::unique_ptr<histogram>> latencies;  // one per worker thread, guarded by m
  std::string first_error;
  void fail(const std::string& why) {
    ++errors;
    std::lock_guard lock(m);
    if (first_error.empty()) first_error = why;
  }
  /// The calling worker thread's histogram: only that thread adds to it (a histogram per
  /// connection would be 16 KiB each, and with hundreds of connections every add a cache miss).
  /// Read by the summary once the runtime's session is over.
  histogram& latency_here() {
    thread_local totals* owner = nullptr;
    thread_local histogram* mine = nullptr;
    if (owner != this) {
      std::lock_guard lock(m);
      mine = latencies.emplace_back(std::make_unique<histogram>()).get();
      owner = this;
    }
    return *mine;
  }
  histogram latency() {
    histogram all;
    std::lock_guard lock(m);
    for (auto& h : latencies) all.merge(*h);
    return all;
  }
};

// The bytes of connection c's messages: a pseudo-random body per connection (so an echo that
// went to the wrong connection or was shifted is caught), generated once.
void fill(std::span<std::byte> out, std::uint64_t c) {
  std::uint64_t x = (c + 1) * 0x9E3779B97F4A7C15ull;
  for (auto& b : out) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b = static_cast<std::byte>(x);
  }
}

// Message k of connection c starts with a 16-byte stamp of (c, k) (fewer bytes in a shorter
// message), so a stale or repeated echo is caught too; the rest is the connection's body.
void stamp(std::span<std::byte> msg, std::uint64_t c, std::uint64_t k) {
  std::uint64_t w[2] = {(c + 1) * 0xC2B2AE3D27D4EB4Full ^ (k + 1), (k + 1) * 0x9E3779B97F4A7C15ull};
  if (msg.size() >= sizeof w) {
    std::memcpy(msg.data(), w, sizeof w);  // a constant size: two stores, not a call
  } else {
    std::memcpy(msg.data(), w, msg.size());
  }
}

// Checks one echoed piece, the bytes `got` onwards of `expect`: the kernel received it into the
// worker's buffer ring and it is compared where it lies (read_some_pooled: no copy, and one
// multishot receive per connection instead of a receive armed per message).
void check_piece(const corio::pooled_buffer& b, std::span<const std::byte> expect,
                 std::size_t got) {
  if (b.empty()) {
    throw std::runtime_error(
        fmt::format("the server closed after {} of {} echoed bytes", got, expect.size()));
  }
  if (b.size() > expect.size() - got) throw std::runtime_error("more bytes echoed than sent");
  if (std::memcmp(b.data(), expect.data() + got, b.size()) != 0) {
    throw std::runtime_error("wrong bytes echoed");
  }
}

// The measured window opens when every connection is established (or has failed): the first
// connection past the barrier stamps the start, so connection set-up is not measured.
clk::time_point window_start(totals& t) {
  std::int64_t expected = 0;
  std::int64_t now = clk::now().time_since_epoch().count();
  t.start.compare_exchange_strong(expected, now, std::memory_order_acq_rel);
  return clk::time_point(clk::duration(t.start.load(std::memory_order_acquire)));
}

// Adds the messages counted in `n` to t.messages once 64 are counted (one atomic add per 64),
// and the rest when it goes away, on every path out of the loop.
struct message_counter {
  totals& t;
  std::uint64_t n = 0;
  explicit message_counter(totals& to) : t(to) {}
  message_counter(const message_counter&) = delete;
  message_counter& operator=(const message_counter&) = delete;
  ~message_counter() { t.messages.fetch_add(n, std::memory_order_relaxed); }
  void add(std::uint64_t k) noexcept {
    n += k;
    if (n >= 64) t.messages.fetch_add(std::exchange(n, 0), std::memory_order_relaxed);
  }
};

// The measured round trips of one connection until `end`. Apart from connection()'s set-up and
// error handling, with the stream and every counter in its own frame: with hundreds of
// connections each round trip resumes a frame that is cold in the cache, and every further cache
// line it touches (the stream inside connection()'s frame, say) is another miss.
corio::task<> round_trips(tcp_stream stream, const settings& s, std::size_t id, clk::time_point end,
                          totals& t) {
  message_counter counted{t};
  std::vector<std::byte> out(s.length * s.depth);
  fill(out, id);
  // One clock read per round trip: its end is the next one's start.
  auto t0 = clk::now();
  for (std::uint64_t k = 0; t0 < end; k += s.depth) {
    for (std::size_t i = 0; i < s.depth; ++i) {
      stamp(std::span(out).subspan(i * s.length, s.length), id, k + i);
    }
    co_await stream.write_all(out);
    for (std::size_t got = 0; got < out.size();) {
      corio::pooled_buffer b = co_await stream.read_some_pooled();
      check_piece(b, out, got);
      got += b.size();
    }
    auto t1 = clk::now();
    auto ns = static_cast<std::uint64_t>(std::chrono::nanoseconds(t1 - t0).count());
    t0 = t1;
    histogram& h = t.latency_here();  // after each resumption: the task may have moved
    for (std::size_t i = 0; i < s.depth; ++i) h.add(ns);
    counted.add(s.depth);
  }
}

corio::task<> connection(const settings& s, std::size_t id, corio::barrier& connected, totals& t) {
  try {
    std::optional<tcp_stream> stream;
    std::string failed;
    try {
      tcp_stream c = co_await tcp_stream::connect(s.addr, 5s);
      stream.emplace(std::move(c));
    } catch (const corio::operation_cancelled&) {
      throw;
    } catch (const std::exception& e) {
      failed = e.what();  // still arrives below: the others must not wait for it
    }
    co_await connected.arrive_and_wait();
    if (!stream) throw std::runtime_error(failed);
    auto end = window_start(t) +
               std::chrono::duration_cast<clk::duration>(std::chrono::duration<double>(s.seconds));
    stream->set_nodelay(true);
    stream->set_read_timeout(std::chrono::seconds(10));  // a silent server is an error, not a hang
    co_await round_trips(std::move(*stream), s, id, end, t);
  } catch (const corio::operation_cancelled&) {
    // SIGINT or SIGTERM: the run ends early; what was measured so far still counts.
  } catch (const std::exception& e) {
    t.fail(fmt::format("connection {}: {}", id, e.what()));
  }
}

// Once a second, on a terminal: messages per second since the last line.
corio::task<> progress(totals& t) {
  std::uint64_t last = 0;
  auto begin = clk::now();
  for (;;) {
    co_await corio::sleep_for(1s);
    std::uint64_t now = t.messages.load(std::memory_order_relaxed);
    fmt::print("  {:5.1f} s  {:>10} msgs/s\n",
               std::chrono::duration<double>(clk::now() - begin).count(), now - last);
    std::fflush(stdout);
    last = now;
  }
}

}  // namespace

int main(int argc, char** argv) {
  settings s;
  std::string addr;
  auto cli = samples::parse(
      argc, argv, "echo_client: load an echo server and verify every echoed byte",
      {{"addr", "server address (a.b.c.d:port or [v6]:port)", [&](std::string_view v) { addr = v; },
        'a'},
       {"connections", "concurrent connections (default 50)",
        [&](std::string_view v) { s.connections = samples::number("connections", v, 100000); },
        'c'},
       {"length", "message length in bytes (default 64)",
        [&](std::string_view v) { s.length = samples::number("length", v, 64u << 20); }, 'l'},
       {"duration", "seconds to run (default 5)",
        [&](std::string_view v) {
          s.seconds = static_cast<double>(samples::number("duration", v, 86400));
        },
        'd'},
       {"threads", "worker threads, like --workers (default: one per CPU)",
        [&](std::string_view v) {
          std::string w(v);
          setenv("CORIO_ECHO_CLIENT_WORKERS", w.c_str(), 1);
        },
        't'},
       {"pipeline", "messages in flight per connection (default 1)",
        [&](std::string_view v) { s.depth = samples::number("pipeline", v, 1024); }, 'p'}});
  std::size_t workers = cli.workers;
  if (const char* w = std::getenv("CORIO_ECHO_CLIENT_WORKERS"))
    workers = std::strtoul(w, nullptr, 10);
  try {
    if (addr.empty() && cli.port == 0) throw std::invalid_argument("give --addr (-a) or --port");
    s.addr = addr.empty()
                 ? socket_address::from_ip("127.0.0.1", static_cast<std::uint16_t>(cli.port))
                 : socket_address::parse(addr);
    if (s.length == 0 || s.depth == 0 || s.connections == 0) {
      throw std::invalid_argument("connections, length and pipeline must be at least 1");
    }
    samples::stop_signals signals;  // before the runtime's threads, which inherit the mask
    // A read pool sized to the load: buffers twice the batch (one receive never fills one, which
    // would make the kernel retry at once) and twice as many as connections. Small buffers keep
    // the pool in the cache; with the default 8 KiB buffers every 64-byte echo lands on another
    // page (bench/client.sh: 0.78 x loadgen at 500 x 64 with them).
    std::size_t batch = s.length * s.depth;
    std::size_t buffer = std::bit_ceil(std::clamp<std::size_t>(2 * batch, 64, 64 << 10));
    unsigned buffers = std::bit_ceil(
        static_cast<unsigned>(std::clamp<std::size_t>(2 * s.connections * s.depth, 256, 32768)));
    corio::runtime rt{corio::runtime_options{
        .workers = workers, .read_pool_buffers = buffers, .read_pool_buffer_size = buffer}};
    totals t;
    bool tty = ::isatty(1);
    fmt::print(
        "echo_client: {} connections x {} bytes (pipeline {}) to {} for {} s on {} workers\n",
        s.connections, s.length, s.depth, s.addr, s.seconds, rt.worker_count());
    std::fflush(stdout);
    // A signal cancels the load: the scope cancels the connections and waits for them, so their
    // message counts are in the totals before the summary. The progress task, detached, goes
    // with the session.
    auto load = [](const settings& s, totals& t, bool tty) -> corio::task<> {
      if (tty) corio::spawn(progress(t)).detach();
      corio::barrier connected(s.connections);
      auto body = [&](corio::scope& sc) -> corio::task<> {  // named first (GCC 12, README)
        for (std::size_t i = 0; i < s.connections; ++i) sc.spawn(connection(s, i, connected, t));
        co_return;
      };
      co_await corio::scoped(std::move(body));
    };
    bool finished = rt.block_on(samples::run_until_signal(signals, load(s, t, tty)));
    if (!finished) fmt::print("echo_client: interrupted, results so far\n");
    std::int64_t opened = t.start.load();
    double secs =
        opened == 0
            ? 0.0
            : std::chrono::duration<double>(clk::now() - clk::time_point(clk::duration(opened)))
                  .count();
    double mps = secs > 0 ? static_cast<double>(t.messages.load()) / secs : 0.0;
    histogram latency = t.latency();
    fmt::print("messages: {}  errors: {}\n", t.messages.load(), t.errors.load());
    fmt::print(
        "{:.0f} msgs/s  {:.2f} MiB/s  round trip p50 {:.1f} us  p99 {:.1f} us  max {:.1f} us\n",
        mps, mps * static_cast<double>(s.length) / (1 << 20), latency.percentile_us(0.5),
        latency.percentile_us(0.99), latency.max_us());
    if (t.errors.load() != 0) {
      fmt::print(stderr, "echo_client: {} connection(s) failed; first: {}\n", t.errors.load(),
                 t.first_error);
      return 1;
    }
    if (t.messages.load() == 0) {
      fmt::print(stderr, "echo_client: no message was echoed\n");
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "echo_client: {}\n", e.what());
    return 2;
  }
}
