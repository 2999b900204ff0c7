// The HTTPS sample: http_server's routes and connection handling (samples/http/server.hpp)
// behind corio::tls. Every connection's TLS handshake runs in its own task, bounded by the
// header timeout, so a client that never finishes it holds nothing but its own connection.
//
//   https_server --cert FILE --key FILE [--port N] [--workers N] [--bind ADDR] [--root DIR]
//                [--header-timeout-ms MS] [--max-body BYTES]   (PEM files; port 0: any free)
//
// Stops cleanly on SIGINT or SIGTERM.
#include "common/cli.hpp"
#include "common/signals.hpp"
#include "http/cli_options.hpp"
#include "http/server.hpp"

#include <corio/corio.hpp>
#include <corio/tls.hpp>

#include <fmt/format.h>

#include <optional>

using namespace corio::net;
namespace tls = corio::tls;

namespace {

// A failed handshake (a plain-HTTP client, an untrusting client) or a connection's failure
// ends that connection only.
corio::task<> serve(tcp_stream tcp, tls::context ctx, const http::server_options& options) {
  try {
    auto handshake = tls::accept(std::move(ctx), std::move(tcp));
    auto s = co_await corio::timeout(options.request_limits.head_timeout, std::move(handshake));
    co_await http::serve_connection(s, options);
    co_await corio::timeout(options.write_timeout, s.shutdown());
  } catch (const corio::operation_cancelled&) {
    throw;
  } catch (const std::exception&) {
  }
}

corio::task<> accept_loop(tcp_listener& listener, const tls::context& ctx,
                          const http::server_options& options) {
  auto incoming = listener.incoming();
  while (auto conn = co_await incoming.next()) {
    conn->stream.set_nodelay(true);
    corio::spawn(serve(std::move(conn->stream), ctx, options)).detach();
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string bind = "127.0.0.1", root, cert, key;
  http::server_options options;
  auto extra = http::server_cli_options(
      bind, root, options, "the handshake, then each request's head, within this (10000)");
  extra.insert(extra.begin(), {{"cert", "certificate chain (PEM) (required)",
                                [&](std::string_view v) { cert = std::string(v); }},
                               {"key", "private key (PEM) (required)",
                                [&](std::string_view v) { key = std::string(v); }}});
  auto cli = samples::parse(
      argc, argv, "https_server: the HTTP/1.1 sample server over TLS (corio::tls, OpenSSL)",
      std::move(extra));
  if (cert.empty() || key.empty()) {
    fmt::print(stderr, "https_server: --cert FILE and --key FILE are required (see --help)\n");
    return 2;
  }
  try {
    auto ctx = tls::context::server_from_pem(cert, key);
    ctx.set_alpn({"http/1.1"});
    std::optional<http::static_files> files;
    if (!root.empty()) options.files = &files.emplace(root);
    samples::stop_signals signals;
    corio::runtime rt{corio::runtime_options{.workers = cli.workers}};
    rt.block_on([](samples::stop_signals& signals, std::string bind, unsigned port,
                   std::size_t workers, const tls::context& ctx,
                   const http::server_options& options) -> corio::task<> {
      auto ip = socket_address::from_ip(bind, static_cast<std::uint16_t>(port));
      auto listener = tcp_listener::bind(ip);
      fmt::print("https_server listening on {} ({} workers)\n", listener.local_address(), workers);
      std::fflush(stdout);
      co_await samples::run_until_signal(signals, accept_loop(listener, ctx, options));
    }(signals, bind, cli.port, rt.worker_count(), ctx, options));
    return 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "https_server: {}\n", e.what());
    return 1;
  }
}
