// Helpers shared by the test suites.
#pragma once

#include <dirent.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace corio::test {

/// Number of entries in /proc/self/fd (the directory fd used to count is not included).
inline long open_fd_count() {
  DIR* d = opendir("/proc/self/fd");
  if (!d) return -1;
  long n = 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(d);
  return n - 1;
}

/// "fd -> target" for every open descriptor, for messages about leaked or vanished fds.
inline std::string describe_fds() {
  std::string out;
  DIR* d = opendir("/proc/self/fd");
  if (!d) return out;
  int self = dirfd(d);
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.' || std::atoi(e->d_name) == self) continue;
    char target[256] = {};
    std::string link = std::string("/proc/self/fd/") + e->d_name;
    ssize_t n = readlink(link.c_str(), target, sizeof target - 1);
    out += std::string(" ") + e->d_name + "->" + (n > 0 ? target : "?");
  }
  closedir(d);
  return out;
}

/// Iteration counts scale with CORIO_TEST_SCALE (default 1) so the same binaries serve the fast
/// tier in CI and longer runs by hand.
// A "Name:  N kB" field of /proc/self/status (VmRSS, VmHWM, RssAnon...), in KiB; -1 if absent.
inline long proc_status_kib(const char* field) {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return -1;
  char line[256];
  long v = -1;
  std::size_t len = std::strlen(field);
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::strncmp(line, field, len) == 0 && line[len] == ':') {
      v = std::atol(line + len + 1);
      break;
    }
  }
  std::fclose(f);
  return v;
}

inline long scaled(long n) {
  static const long scale = [] {
    const char* s = std::getenv("CORIO_TEST_SCALE");
    long v = s ? std::atol(s) : 1;
    return v > 0 ? v : 1;
  }();
  return n * scale;
}

/// True when the ring injects faults (a -Dfault_injection=true build run with CORIO_FAULTS): the
/// suite must pass unchanged then, except for timing bounds, which the extra submits, late CQEs
/// and tiny rings stretch (those tests check a looser bound).
// Whether this build runs under ASan or TSan, which make each operation several times slower:
// timing bounds widen there, counts do not.
inline constexpr bool sanitized =
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
    true;
#else
    false;
#endif
#else
    false;
#endif

inline bool faults_injected() {
  const char* s = std::getenv("CORIO_FAULTS");
  return s != nullptr && *s != '\0';
}

/// Counts live instances; destructors of pending frames are proven to run with it.
struct counted {
  static inline std::atomic<long> live{0};
  counted() noexcept { ++live; }
  counted(const counted&) noexcept { ++live; }
  counted(counted&&) noexcept { ++live; }
  ~counted() { --live; }
};

/// Burns CPU for `d` without suspending. A plain function on purpose: GCC 12 drops `volatile`
/// from locals that live in a coroutine frame, so a volatile spin loop in a coroutine can be
/// folded away entirely.
inline void spin_for(std::chrono::microseconds d) {
  auto until = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < until) {
  }
}

inline double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

/// Sets CORIO_TEST_DISABLE_FEATURES (lib/ring.hpp) for the runtimes constructed in its scope.
struct disable_features {
  explicit disable_features(const char* names) { setenv("CORIO_TEST_DISABLE_FEATURES", names, 1); }
  ~disable_features() { unsetenv("CORIO_TEST_DISABLE_FEATURES"); }
  disable_features(const disable_features&) = delete;
  disable_features& operator=(const disable_features&) = delete;
};

}  // namespace corio::test
