// The HTTP/1.1 sample server: keep-alive, pipelining, chunked and Content-Length bodies, and the
// routes of samples/http/server.hpp (GET / -> "Hello, World!", POST /echo, GET /static/<path>).
//
//   http_server [--port N] [--workers N] [--bind ADDR] [--root DIR] [--header-timeout-ms MS]
//               [--max-body BYTES]                        (port 0: any free port, printed)
//
// Stops cleanly on SIGINT or SIGTERM.
#include "common/cli.hpp"
#include "common/signals.hpp"
#include "http/cli_options.hpp"
#include "http/server.hpp"

#include <corio/corio.hpp>

#include <fmt/format.h>

#include <optional>

using namespace corio::net;

namespace {

// A connection's failure (a reset peer, a client that stops reading) ends that connection only.
corio::task<> serve(tcp_stream s, const http::server_options& options) {
  try {
    co_await http::serve_connection(s, options);
  } catch (const corio::operation_cancelled&) {
    throw;
  } catch (const std::exception&) {
  }
}

corio::task<> accept_loop(tcp_listener& listener, const http::server_options& options) {
  auto incoming = listener.incoming();  // multishot accept underneath
  while (auto conn = co_await incoming.next()) {
    conn->stream.set_nodelay(true);
    corio::spawn(serve(std::move(conn->stream), options)).detach();
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string bind = "127.0.0.1";
  std::string root;
  http::server_options options;
  auto cli = samples::parse(
      argc, argv, "http_server: an HTTP/1.1 server (keep-alive, pipelining, chunked bodies)",
      http::server_cli_options(bind, root, options,
                               "a request's head must arrive within this (default 10000)"));
  try {
    std::optional<http::static_files> files;
    if (!root.empty()) options.files = &files.emplace(root);
    samples::stop_signals signals;
    corio::runtime rt{corio::runtime_options{.workers = cli.workers}};
    rt.block_on([](samples::stop_signals& signals, std::string bind, unsigned port,
                   std::size_t workers, const http::server_options& options) -> corio::task<> {
      auto ip = socket_address::from_ip(bind, static_cast<std::uint16_t>(port));
      auto listener = tcp_listener::bind(ip);
      fmt::print("http_server listening on {} ({} workers)\n", listener.local_address(), workers);
      std::fflush(stdout);
      co_await samples::run_until_signal(signals, accept_loop(listener, options));
    }(signals, bind, cli.port, rt.worker_count(), options));
    return 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "http_server: {}\n", e.what());
    return 1;
  }
}
