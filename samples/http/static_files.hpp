// A directory served read-only over HTTP: files beneath it, never outside it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace http {

/// The root of the static file route. Opening is a plain (blocking) system call -- a path lookup,
/// cheap next to the reads, which the server does through io_uring.
class static_files {
 public:
  /// Opens the directory `root`; throws std::system_error naming it when that fails.
  explicit static_files(const std::string& root);
  ~static_files();
  static_files(const static_files&) = delete;
  static_files& operator=(const static_files&) = delete;

  struct opened {
    int code = 200;  // 200: `fd` is open (the caller owns it); else 400, 403, 404 or 500
    int fd = -1;     // read-only, blocking, close-on-exec
    std::uint64_t size = 0;
    std::string_view content_type;  // from the extension
  };
  /// Opens `path` (percent-decoded, relative to the root). Refused (403): an absolute path, a
  /// ".." segment, and any path that resolves outside the root through a symlink (openat2's
  /// RESOLVE_BENEATH; where the kernel lacks openat2, every symlink is refused). Not a regular
  /// file, or missing: 404. A NUL byte: 400.
  opened open(std::string_view path) const;

 private:
  int dir_fd_ = -1;
};

/// `encoded` with its %XX escapes decoded; std::nullopt for a malformed escape.
std::optional<std::string> percent_decode(std::string_view encoded);

/// The Content-Type for a file name's extension (application/octet-stream when unknown).
std::string_view content_type_for(std::string_view name) noexcept;

}  // namespace http
