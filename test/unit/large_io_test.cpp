// Single operations larger than any one SQE can carry (T38 in docs/reliability.md).
// Invariants: an exact transfer of more than 4 GiB (beyond u32 and INT_MAX) goes through in
// pieces of at most 1 GiB with every byte in place, over a socket, a character device and a
// file at offsets above 4 GiB; the process's resident memory does not grow with the size.
//
// The buffers cost no memory: one 1 MiB memfd mapped again and again over a 4 GiB + 4 KiB
// range, so the data seen at offset x is the pattern at x mod 1 MiB.
#include <doctest/doctest.h>

#include "../support/invariants.hpp"
#include "../support/net.hpp"

#include <corio/corio.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <vector>

using corio::task;
using namespace corio::net;

namespace {

constexpr std::size_t tile = std::size_t{1} << 20;
// 4 GiB + 4099: past u32 (a length cast without the 1 GiB cap would wrap to 4099 bytes and then
// to 0) and past INT_MAX (a result read as int would turn negative).
constexpr std::size_t huge = (std::size_t{4} << 30) + 4099;

// `bytes` of virtual memory, rounded up to whole tiles, all backed by the same 1 MiB of memfd
// pages holding pattern(tile).
class aliased_buffer {
 public:
  explicit aliased_buffer(std::size_t bytes) : tiles_((bytes + tile - 1) / tile) {
    fd_ = ::memfd_create("corio-large-io", MFD_CLOEXEC);
    REQUIRE(fd_ >= 0);
    REQUIRE(::ftruncate(fd_, static_cast<off_t>(tile)) == 0);
    pattern_ = corio::test::pattern(tile, 38);
    REQUIRE(::pwrite(fd_, pattern_.data(), tile, 0) == static_cast<ssize_t>(tile));
    void* base = ::mmap(nullptr, tiles_ * tile, PROT_NONE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    REQUIRE(base != MAP_FAILED);
    base_ = static_cast<std::byte*>(base);
    for (std::size_t i = 0; i < tiles_; ++i) {
      void* p =
          ::mmap(base_ + i * tile, tile, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd_, 0);
      REQUIRE(p == base_ + i * tile);
    }
  }
  ~aliased_buffer() {
    ::munmap(base_, tiles_ * tile);
    ::close(fd_);
  }
  aliased_buffer(const aliased_buffer&) = delete;
  aliased_buffer& operator=(const aliased_buffer&) = delete;

  std::span<std::byte> first(std::size_t n) { return {base_, n}; }
  const std::vector<std::byte>& pattern() const { return pattern_; }

 private:
  std::size_t tiles_;
  int fd_ = -1;
  std::byte* base_ = nullptr;
  std::vector<std::byte> pattern_;
};

// Private resident memory (RssAnon): what copying or buffering the data would grow. VmRSS would
// count the aliased memfd page once per mapping.
long anon_resident_kib() {
  return corio::test::proc_status_kib("RssAnon");
}

// Reads everything from `s` into a 1 MiB buffer, checking each byte against the pattern at its
// stream offset; returns the byte count (or -1 at the first mismatch).
task<long long> read_and_check(tcp_stream s, const std::vector<std::byte>& pattern) {
  std::vector<std::byte> buf(tile);
  long long total = 0;
  for (;;) {
    std::size_t n = co_await s.read(buf);
    if (n == 0) co_return total;
    std::size_t done = 0;
    while (done < n) {
      std::size_t at = static_cast<std::size_t>(total) % tile;
      std::size_t run = std::min(n - done, tile - at);
      if (std::memcmp(buf.data() + done, pattern.data() + at, run) != 0) co_return -1;
      done += run;
      total += static_cast<long long>(run);
    }
  }
}

}  // namespace

TEST_SUITE("large_io") {
  TEST_CASE(
      "one write_all of 4 GiB + 4099 bytes over TCP: every byte arrives in order, and "
      "memory stays flat (T38)") {
    aliased_buffer data(huge);
    long rss_before = anon_resident_kib();
    long long received = corio::run(
        [](aliased_buffer& data) -> task<long long> {
          auto l = tcp_listener::bind("127.0.0.1:0");
          auto c = co_await tcp_stream::connect(l.local_address());
          auto srv = co_await l.accept();
          auto reader = corio::spawn(read_and_check(std::move(srv.stream), data.pattern()));
          co_await c.write_all(data.first(huge));
          c.shutdown(shutdown_how::write);
          co_return co_await std::move(reader);
        }(data),
        {.workers = 2});
    CHECK(received == static_cast<long long>(huge));
    long rss_after = anon_resident_kib();
    CHECK_MESSAGE(rss_after - rss_before < 64 * 1024,
                  "RssAnon grew from " << rss_before << " to " << rss_after << " KiB");
  }

  TEST_CASE("4 GiB + 4099 bytes in one read_exact from /dev/zero and one write_all to /dev/null") {
    aliased_buffer data(huge);
    corio::run(
        [](aliased_buffer& data) -> task<> {
          int zero = ::open("/dev/zero", O_RDONLY | O_CLOEXEC);
          int null = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
          REQUIRE(zero >= 0);
          REQUIRE(null >= 0);
          corio::fd_stream in(zero), out(null);
          std::size_t got = co_await in.read_exact(data.first(huge));
          CHECK(got == huge);
          co_await out.write_all(data.first(huge));
        }(data),
        {.workers = 1});
  }

  TEST_CASE(
      "read_exact_at of 4 GiB + 4099 bytes of a sparse file, and a write at an offset above "
      "4 GiB read back") {
    // tmpfs: its holes read as zeros without filling the page cache.
    char path[] = "/dev/shm/corio-large-io-XXXXXX";
    int fd = ::mkstemp(path);
    REQUIRE(fd >= 0);
    ::close(fd);
    aliased_buffer data(huge);
    corio::run(
        [](aliased_buffer& data, std::string path) -> task<> {
          auto f = co_await corio::file::open(path, corio::open_mode::read_write);
          // The last 4099 bytes, written past 4 GiB, are a known marker; the rest is a hole.
          std::vector<std::byte> marker(4099);
          for (std::size_t i = 0; i < marker.size(); ++i) marker[i] = std::byte(0x38 ^ (i & 0xff));
          co_await f.write_at(marker, huge - marker.size());
          std::size_t got = co_await f.read_exact_at(data.first(huge), 0);
          CHECK(got == huge);
          std::vector<std::byte> back(marker.size());
          co_await f.read_exact_at(back, huge - marker.size());
          CHECK(back == marker);
        }(data, path),
        {.workers = 1});
    ::unlink(path);
  }
}
