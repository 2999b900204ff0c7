#include "static_files.hpp"

#include "text.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <system_error>
#include <utility>

namespace http {

namespace {

// An fd closed at the end of the scope unless released.
struct fd_guard {
  int fd;
  ~fd_guard() {
    if (fd >= 0) ::close(fd);
  }
  int release() noexcept { return std::exchange(fd, -1); }
};

int code_for(int err) noexcept {
  switch (err) {
    case ENOENT:
    case ENOTDIR:
    case ENAMETOOLONG:
      return 404;
    case EXDEV:  // RESOLVE_BENEATH: the path left the root
    case ELOOP:  // a symlink where none is allowed
    case EACCES:
    case EPERM:
      return 403;
    default:
      return 500;
  }
}

// Without openat2: one component at a time, never following a symlink. With ".." and absolute
// paths refused before, this cannot leave the root.
int open_walk(int dir_fd, std::string_view path, int flags) {
  fd_guard dir{-1};
  int at = dir_fd;
  for (;;) {
    std::size_t slash = path.find('/');
    std::string part(path.substr(0, slash));
    if (slash == std::string_view::npos) return ::openat(at, part.c_str(), flags | O_NOFOLLOW);
    path.remove_prefix(slash + 1);
    if (part.empty() || part == ".") continue;
    int next = ::openat(at, part.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0) return -1;
    dir = fd_guard{next};
    at = next;
  }
}

int open_beneath(int dir_fd, std::string_view path, int flags) {
  std::string p(path);
  open_how how{};
  how.flags = static_cast<std::uint64_t>(flags);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  long fd = ::syscall(SYS_openat2, dir_fd, p.c_str(), &how, sizeof how);
  if (fd < 0 && errno == ENOSYS) return open_walk(dir_fd, path, flags);
  return static_cast<int>(fd);
}

static_files::opened refused(int code) noexcept {
  static_files::opened o;
  o.code = code;
  return o;
}

bool has_dot_dot_segment(std::string_view path) noexcept {
  while (!path.empty()) {
    std::size_t slash = path.find('/');
    if (path.substr(0, slash) == "..") return true;
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return false;
}

}  // namespace

static_files::static_files(const std::string& root) {
  dir_fd_ = ::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd_ < 0) throw std::system_error(errno, std::generic_category(), "--root " + root);
}

static_files::~static_files() {
  ::close(dir_fd_);
}

static_files::opened static_files::open(std::string_view path) const {
  if (path.find('\0') != std::string_view::npos) return refused(400);
  if (path.empty()) return refused(404);
  if (path.front() == '/' || has_dot_dot_segment(path)) return refused(403);
  // O_NONBLOCK so that a FIFO under the root cannot block the worker in open(); it is cleared
  // again below, since io_uring would then fail reads with EAGAIN instead of waiting.
  fd_guard f{open_beneath(dir_fd_, path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)};
  if (f.fd < 0) return refused(code_for(errno));
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) return refused(500);
  if (!S_ISREG(st.st_mode)) return refused(404);
  if (::fcntl(f.fd, F_SETFL, 0) != 0) return refused(500);
  opened ok;
  ok.fd = f.release();
  ok.size = static_cast<std::uint64_t>(st.st_size);
  ok.content_type = content_type_for(path);
  return ok;
}

std::optional<std::string> percent_decode(std::string_view encoded) {
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    c = ascii_lower(c);
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::string out;
  out.reserve(encoded.size());
  for (std::size_t i = 0; i < encoded.size(); ++i) {
    if (encoded[i] != '%') {
      out += encoded[i];
      continue;
    }
    if (i + 2 >= encoded.size()) return std::nullopt;
    int hi = hex(encoded[i + 1]), lo = hex(encoded[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

std::string_view content_type_for(std::string_view name) noexcept {
  struct entry {
    std::string_view ext, type;
  };
  static constexpr entry types[] = {
      {"html", "text/html; charset=utf-8"},
      {"htm", "text/html; charset=utf-8"},
      {"txt", "text/plain; charset=utf-8"},
      {"css", "text/css"},
      {"js", "text/javascript"},
      {"json", "application/json"},
      {"png", "image/png"},
      {"jpg", "image/jpeg"},
      {"jpeg", "image/jpeg"},
      {"gif", "image/gif"},
      {"svg", "image/svg+xml"},
      {"ico", "image/x-icon"},
      {"wasm", "application/wasm"},
      {"pdf", "application/pdf"},
  };
  std::size_t dot = name.rfind('.');
  std::size_t slash = name.rfind('/');
  if (dot != std::string_view::npos && (slash == std::string_view::npos || dot > slash)) {
    std::string_view ext = name.substr(dot + 1);
    for (const entry& e : types)
      if (iequals(ext, e.ext)) return e.type;
  }
  return "application/octet-stream";
}

}  // namespace http
