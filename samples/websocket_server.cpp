// The WebSocket sample: an RFC 6455 echo server on any path (ws://host:port/). The upgrade
// request is read with the HTTP samples' request reader; then every text or binary message is
// sent back whole (fragmented messages are reassembled), pings get pongs, and the close
// handshake echoes the client's code. Protocol errors close with 1002, invalid UTF-8 with 1007,
// messages over --max-message with 1009. A request that is not an upgrade gets
// 426 Upgrade Required; a bad Sec-WebSocket-Key 400; a version other than 13 gets 426 with
// "Sec-WebSocket-Version: 13".
//
//   websocket_server [--port N] [--workers N] [--bind ADDR] [--max-message BYTES]
//
// Stops cleanly on SIGINT or SIGTERM.
#include "common/cli.hpp"
#include "common/signals.hpp"
#include "http/request.hpp"
#include "http/response.hpp"
#include "websocket/handshake.hpp"
#include "websocket/session.hpp"

#include <corio/corio.hpp>

#include <fmt/format.h>

#include <vector>

using namespace corio::net;
using namespace std::chrono_literals;

namespace {

// Answers `req` with an error response that closes the connection.
corio::task<> refuse(tcp_stream& s, http::request& req, int code, std::string_view extra = {}) {
  std::string out;
  req.keep_alive = false;
  http::append_response(out, req, code, "text/plain", http::reason_phrase(code), false, extra);
  co_await s.write_all(out);
}

corio::task<> serve(tcp_stream s, const ws::session_options& options) {
  s.set_write_timeout(30s);
  http::limits limits;
  // The session reads frames with read(): the handshake must not leave a pooled receive armed
  // (read_some_pooled and read do not mix on one stream).
  limits.pooled_reads = false;
  http::request_reader<tcp_stream> reader(s, limits);
  http::request req;
  http::status st = co_await reader.next(req);
  if (st == http::status::closed) co_return;
  if (st != http::status::ok) {
    std::string out;
    http::append_error(out, http::status_code(st));
    co_await s.write_all(out);
    co_return;
  }
  bool upgrade = req.method == "GET" && req.has_token("Upgrade", "websocket") &&
                 req.has_token("Connection", "upgrade");
  if (!upgrade || (req.version_major == 1 && req.version_minor == 0)) {
    co_await refuse(s, req, 426, "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n");
    co_return;
  }
  if (req.get("Sec-WebSocket-Version") != "13") {
    co_await refuse(s, req, 426, "Sec-WebSocket-Version: 13\r\n");
    co_return;
  }
  std::string_view key = req.get("Sec-WebSocket-Key");
  if (!ws::valid_client_key(key)) {
    co_await refuse(s, req, 400);
    co_return;
  }
  std::string head = fmt::format(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Accept: {}\r\n\r\n",
      ws::accept_key(key));
  co_await s.write_all(head);
  ws::session<tcp_stream> session(s, reader.buffered(), options);
  co_await session.run();
}

// A connection's failure (a reset peer) ends that connection only.
corio::task<> serve_quietly(tcp_stream s, const ws::session_options& options) {
  try {
    co_await serve(std::move(s), options);
  } catch (const corio::operation_cancelled&) {
    throw;
  } catch (const std::exception&) {
  }
}

corio::task<> accept_loop(tcp_listener& listener, const ws::session_options& options) {
  auto incoming = listener.incoming();
  while (auto conn = co_await incoming.next()) {
    conn->stream.set_nodelay(true);
    corio::spawn(serve_quietly(std::move(conn->stream), options)).detach();
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string bind = "127.0.0.1";
  ws::session_options options;
  auto cli = samples::parse(
      argc, argv, "websocket_server: an RFC 6455 WebSocket echo server on any path",
      {{"bind", "address to listen on (default 127.0.0.1)",
        [&](std::string_view v) { bind = std::string(v); }},
       {"max-message", "largest message in bytes, else close 1009 (default 16 MiB + 1 KiB)",
        [&](std::string_view v) {
          options.max_message = samples::number("max-message", v, 1ul << 40);
        }}});
  try {
    samples::stop_signals signals;
    corio::runtime rt{corio::runtime_options{.workers = cli.workers}};
    rt.block_on([](samples::stop_signals& signals, std::string bind, unsigned port,
                   std::size_t workers, const ws::session_options& options) -> corio::task<> {
      auto ip = socket_address::from_ip(bind, static_cast<std::uint16_t>(port));
      auto listener = tcp_listener::bind(ip);
      fmt::print("websocket_server listening on {} ({} workers)\n", listener.local_address(),
                 workers);
      std::fflush(stdout);
      co_await samples::run_until_signal(signals, accept_loop(listener, options));
    }(signals, bind, cli.port, rt.worker_count(), options));
    return 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "websocket_server: {}\n", e.what());
    return 1;
  }
}
