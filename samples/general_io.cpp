// Any fd as a stream (May's CoIo): copies stdin to stdout through corio::fd_stream, on a tty as
// well as on pipes and files.
//
//   general_io [--workers N]            e.g.  printf 'hello\n' | general_io
//
// Stops at the end of stdin, or cleanly on SIGINT or SIGTERM (a read from a tty is cancelled).
#include "common/cli.hpp"
#include "common/signals.hpp"

#include <corio/corio.hpp>

#include <fmt/format.h>

#include <array>

namespace {

corio::task<> copy(std::size_t& total) {
  auto in = corio::stdin_stream();  // borrowed: never closed by corio
  auto out = corio::stdout_stream();
  std::array<std::byte, 64 * 1024> buf;
  while (std::size_t n = co_await in.read(buf)) {
    co_await out.write_all(std::span(buf).first(n));
    total += n;
  }
}

}  // namespace

int main(int argc, char** argv) {
  auto cli =
      samples::parse(argc, argv, "general_io: copy stdin to stdout through corio::fd_stream");
  try {
    samples::stop_signals signals;
    corio::runtime rt{corio::runtime_options{.workers = cli.workers}};
    std::size_t total = 0;
    rt.block_on(samples::run_until_signal(signals, copy(total)));
    fmt::print(stderr, "general_io: copied {} bytes\n", total);
    return 0;
  } catch (const std::system_error& e) {
    fmt::print(stderr, "general_io: {}\n", e.what());
    return e.code() == std::errc::broken_pipe ? 0 : 1;  // the reader went away: a normal end
  }
}
