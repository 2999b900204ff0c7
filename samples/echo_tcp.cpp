// The coio TCP echo server: every connection gets a task that writes back what it reads.
//
//   echo_tcp [--port N] [--workers N] [--bind ADDR] [--reads copy|pooled]
//                                                        (port 0: any free port, printed)
//
// Reads go into a 16 KiB buffer in each connection's frame (read), or with --reads pooled into
// buffers of the worker's read pool (read_some_pooled: one multishot receive per connection, no
// buffer of its own while idle). Copy is the default: on the benchmark machine it used up to 8%
// less CPU per message (docs/benchmarks.md); pooled saves the per-connection buffer.
//
// Stops cleanly on SIGINT or SIGTERM: the accept loop and every connection are cancelled.
#include "common/cli.hpp"
#include "common/signals.hpp"

#include <corio/corio.hpp>

#include <fmt/format.h>

#include <array>

using namespace corio::net;

namespace {

corio::task<> serve_copy(tcp_stream s) {
  std::array<std::byte, 16 * 1024> buf;
  for (;;) {
    std::size_t n = co_await s.read(buf);  // 0 = orderly EOF
    if (n == 0) co_return;
    co_await s.write_all(std::span(buf).first(n));
  }
}

corio::task<> serve_pooled(tcp_stream s) {
  for (;;) {
    corio::pooled_buffer b = co_await s.read_some_pooled();  // empty = orderly EOF
    if (b.empty()) co_return;
    co_await s.write_all(b.bytes());
  }
}

// A connection's failure (a reset peer, say) ends that connection only.
corio::task<> serve_quietly(tcp_stream s, bool pooled) {
  try {
    if (pooled) {
      co_await serve_pooled(std::move(s));
    } else {
      co_await serve_copy(std::move(s));
    }
  } catch (const std::system_error&) {
  }
}

corio::task<> accept_loop(tcp_listener& listener, bool pooled) {
  auto incoming = listener.incoming();  // multishot accept underneath
  while (auto conn = co_await incoming.next()) {
    conn->stream.set_nodelay(true);
    corio::spawn(serve_quietly(std::move(conn->stream), pooled)).detach();
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string bind = "127.0.0.1";
  bool pooled = false;
  auto cli = samples::parse(
      argc, argv, "echo_tcp: a TCP echo server (one task per connection)",
      {{"bind", "address to listen on (default 127.0.0.1)",
        [&](std::string_view v) { bind = std::string(v); }},
       samples::reads_option(
           pooled,
           "copy (default: a buffer per connection) or pooled (the worker's provided buffers)")});
  try {
    samples::stop_signals signals;
    corio::runtime rt{corio::runtime_options{.workers = cli.workers}};
    rt.block_on([](samples::stop_signals& signals, std::string bind, unsigned port,
                   std::size_t workers, bool pooled) -> corio::task<> {
      auto ip = socket_address::from_ip(bind, static_cast<std::uint16_t>(port));
      auto listener = tcp_listener::bind(ip);
      fmt::print("echo_tcp listening on {} ({} workers)\n", listener.local_address(), workers);
      std::fflush(stdout);
      co_await samples::run_until_signal(signals, accept_loop(listener, pooled));
    }(signals, bind, cli.port, rt.worker_count(), pooled));
    return 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "echo_tcp: {}\n", e.what());
    return 1;
  }
}
