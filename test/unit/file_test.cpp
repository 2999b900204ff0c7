// corio::file through io_uring (T16).
// Invariants: what is written reads back byte for byte; reads at and past the end return short
// counts or 0; read_exact reports an unexpected end; errors name the path or the fd.
#include <doctest/doctest.h>

#include "../support/invariants.hpp"
#include "../support/net.hpp"

#include <corio/corio.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <string>
#include <vector>

using corio::open_mode;
using corio::task;

namespace {
std::string temp_path(const char* name) {
  return std::string("/tmp/corio-file-") + std::to_string(::getpid()) + "-" + name;
}
}  // namespace

TEST_SUITE("file") {
  TEST_CASE("write 64 MiB then read it back") {
    std::string path = temp_path("big");
    corio::run(
        [](std::string path) -> task<> {
          auto out = corio::test::pattern(64u << 20, 11);
          {
            auto f = co_await corio::file::open(
                path, open_mode::write | open_mode::create | open_mode::truncate);
            for (std::size_t off = 0; off < out.size(); off += 1 << 20) {
              co_await f.write(std::span(out).subspan(off, 1 << 20));
            }
            co_await f.fsync();
            CHECK(co_await f.size() == out.size());
            co_await f.close();
          }
          auto f = co_await corio::file::open(path, open_mode::read);
          std::vector<std::byte> in(out.size());
          co_await f.read_exact_at(in, 0);
          CHECK(in == out);
        }(path),
        {.workers = 2});
    ::unlink(path.c_str());
  }

  TEST_CASE(
      "a 1 MiB + 3 byte file comes back byte for byte through 64 KiB reads, read_exact_at "
      "and an fd_stream (T11)") {
    std::string path = temp_path("odd");
    corio::run(
        [](std::string path) -> task<> {
          auto out = corio::test::pattern((1u << 20) + 3, 110);
          {
            auto f = co_await corio::file::open(
                path, open_mode::write | open_mode::create | open_mode::truncate);
            co_await f.write_at(out, 0);
            co_await f.close();
          }
          auto f = co_await corio::file::open(path, open_mode::read);
          std::vector<std::byte> in;
          std::vector<std::byte> buf(64 * 1024);
          std::uint64_t off = 0;
          while (std::size_t n = co_await f.read_at(buf, off)) {
            in.insert(in.end(), buf.begin(), buf.begin() + static_cast<long>(n));
            off += n;
          }
          CHECK(in == out);
          std::vector<std::byte> whole(out.size());
          co_await f.read_exact_at(whole, 0);
          CHECK(whole == out);
          int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
          REQUIRE(fd >= 0);
          corio::fd_stream s(fd);
          std::vector<std::byte> streamed(out.size());
          co_await s.read_exact(streamed);
          CHECK(streamed == out);
          CHECK(co_await s.read(buf) == 0);
        }(path),
        {.workers = 2});
    ::unlink(path.c_str());
  }

  TEST_CASE("short reads at the end, 0 past it, read_exact reports the end") {
    std::string path = temp_path("sizes");
    corio::run(
        [](std::string path) -> task<> {
          for (std::size_t size : {0u, 1u, 4095u, 4096u, 4097u}) {
            CAPTURE(size);
            auto data = corio::test::pattern(size, static_cast<unsigned>(size));
            auto w = co_await corio::file::open(
                path, open_mode::write | open_mode::create | open_mode::truncate);
            co_await w.write_at(data, 0);
            co_await w.close();
            auto f = co_await corio::file::open(path, open_mode::read);
            std::vector<std::byte> buf(8192);
            CHECK(co_await f.read_at(buf, 0) == size);
            CHECK(co_await f.read_at(buf, size) == 0);
            CHECK(co_await f.read_at(buf, size + 100) == 0);
            std::vector<std::byte> exact(size + 1);
            auto r = co_await f.read_exact_at(exact, 0).nothrow();
            CHECK(r.error() == corio::errc::unexpected_eof);
            // read() advances the position until 0.
            std::size_t total = 0;
            std::vector<std::byte> small(1000);
            while (std::size_t n = co_await f.read(small)) total += n;
            CHECK(total == size);
            CHECK(f.position() == size);
          }
        }(path),
        {.workers = 1});
    ::unlink(path.c_str());
  }

  TEST_CASE("append mode writes at the end whatever the position") {
    std::string path = temp_path("append");
    corio::run(
        [](std::string path) -> task<> {
          auto f = co_await corio::file::open(
              path, open_mode::write | open_mode::create | open_mode::truncate);
          co_await f.write(corio::as_bytes("abc"));
          co_await f.close();
          auto g = co_await corio::file::open(path, open_mode::write | open_mode::append);
          co_await g.write(corio::as_bytes("def"));
          CHECK(co_await g.size() == 6);
        }(path),
        {.workers = 1});
    ::unlink(path.c_str());
  }

  TEST_CASE("open errors name the path") {
    std::string what = corio::run(
        []() -> task<std::string> {
          auto r = co_await corio::file::open("/no/such/dir/file", open_mode::read).nothrow();
          CHECK(r.error() == std::errc::no_such_file_or_directory);
          try {
            co_await corio::file::open("/no/such/dir/file", open_mode::read);
          } catch (const std::system_error& e) {
            co_return e.what();
          }
          co_return "";
        }(),
        {.workers = 1});
    CHECK(what.find("/no/such/dir/file") != std::string::npos);
  }
}
