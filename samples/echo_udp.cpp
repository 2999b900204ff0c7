// May's UDP echo: several tasks receive on one socket and send each datagram back to its sender.
//
//   echo_udp [--port N] [--workers N] [--tasks N] [--bind ADDR]
#include "common/cli.hpp"
#include "common/signals.hpp"

#include <corio/corio.hpp>

#include <fmt/format.h>

#include <array>
#include <vector>

using namespace corio::net;

namespace {

corio::task<> echo_datagrams(udp_socket& socket) {
  std::array<std::byte, 65536> buf;
  for (;;) {
    auto d = co_await socket.recv_from(buf);
    auto sent = co_await socket.send_to(std::span(buf).first(d.size), d.from).nothrow();
    (void)sent;  // a sender that went away is not the server's problem
  }
}

corio::task<> serve(udp_socket& socket, std::size_t tasks) {
  std::vector<corio::join_handle<void>> receivers;
  for (std::size_t i = 0; i < tasks; ++i) receivers.push_back(corio::spawn(echo_datagrams(socket)));
  for (auto& r : receivers) co_await r;  // until cancelled
}

}  // namespace

int main(int argc, char** argv) {
  std::string bind = "127.0.0.1";
  std::size_t tasks = 4;
  auto cli = samples::parse(
      argc, argv, "echo_udp: a UDP echo server with several receiving tasks on one socket",
      {{"bind", "address to listen on (default 127.0.0.1)",
        [&](std::string_view v) { bind = std::string(v); }},
       {"tasks", "receiving tasks (default 4)",
        [&](std::string_view v) { tasks = samples::number("tasks", v, 10000); }}});
  try {
    samples::stop_signals signals;
    corio::runtime rt{corio::runtime_options{.workers = cli.workers}};
    rt.block_on([](samples::stop_signals& signals, std::string bind, unsigned port,
                   std::size_t tasks) -> corio::task<> {
      auto socket =
          udp_socket::bind(socket_address::from_ip(bind, static_cast<std::uint16_t>(port)));
      fmt::print("echo_udp listening on {} ({} receiving tasks)\n", socket.local_address(), tasks);
      std::fflush(stdout);
      co_await samples::run_until_signal(signals, serve(socket, tasks));
    }(signals, bind, cli.port, tasks));
    return 0;
  } catch (const std::exception& e) {
    fmt::print(stderr, "echo_udp: {}\n", e.what());
    return 1;
  }
}
