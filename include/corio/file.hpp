// corio::file: regular files through io_uring (openat, read, write, fsync, statx, close).
#pragma once

#include <corio/detail/fd_owner.hpp>
#include <corio/detail/io_awaiter.hpp>
#include <corio/detail/stream_base.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <utility>

namespace corio {

/// How file::open opens a file; combine with |.
enum class open_mode : unsigned {
  read = 1u << 0,             ///< O_RDONLY (O_RDWR with write)
  write = 1u << 1,            ///< O_WRONLY (O_RDWR with read)
  read_write = read | write,  ///< O_RDWR
  create = 1u << 2,           ///< O_CREAT
  truncate = 1u << 3,         ///< O_TRUNC
  append = 1u << 4,           ///< O_APPEND: writes go to the end whatever the position
  exclusive = 1u << 5,        ///< O_EXCL (with create): fail if it exists
};
/// Both sets of flags.
constexpr open_mode operator|(open_mode a, open_mode b) noexcept {
  return static_cast<open_mode>(static_cast<unsigned>(a) | static_cast<unsigned>(b));
}
/// Whether `m` contains any of the flags in `bit`.
constexpr bool has(open_mode m, open_mode bit) noexcept {
  return (static_cast<unsigned>(m) & static_cast<unsigned>(bit)) != 0;
}

class file;

namespace detail {

int open_flags(open_mode m) noexcept;

/// The awaiter of file::open: the path lives here until the kernel has read it.
class open_op : public io_awaiter<open_op, file> {
 public:
  open_op(std::string path, open_mode mode, unsigned perms);
  open_op(open_op&& o) noexcept;
  file finish(io_state&, std::size_t fd);

 private:
  std::string path_;
  open_mode mode_;
};

/// read/write at the file's position: advances the position by what was transferred.
class positioned_op : public io_awaiter<positioned_op, std::size_t> {
 public:
  positioned_op(fd_owner& owner, io_kind kind, void* buf, std::size_t len, bool exact,
                std::uint64_t offset, std::uint64_t* position, const char* what) noexcept;
  std::size_t finish(io_state&, std::size_t n) noexcept {
    if (position_ != nullptr) *position_ += n;
    return n;
  }

 private:
  std::uint64_t* position_;
};

/// fsync / fdatasync.
class fsync_op : public io_awaiter<fsync_op, void> {
 public:
  fsync_op(fd_owner& owner, bool data_only) noexcept;
  void finish(io_state&, std::size_t) noexcept {}
};

/// statx(STATX_SIZE) of the open file.
class size_op : public io_awaiter<size_op, std::uint64_t> {
 public:
  explicit size_op(fd_owner& owner) noexcept;
  size_op(size_op&& o) noexcept;
  std::uint64_t finish(io_state&, std::size_t) noexcept;

 private:
  alignas(8) unsigned char statx_[256] = {};  // a struct statx, filled by the kernel
};

}  // namespace detail

/// A file opened through io_uring. Reads and writes are IORING_OP_READ / IORING_OP_WRITE -- real
/// asynchronous file I/O in the kernel, not a thread pool of ours. read_at and write_at take an
/// offset; read and write use and advance the file's own position (not the kernel's). Operations
/// throw std::system_error naming the operation and fd (open: the path), or yield
/// corio::result<T> through `.nothrow()`.
///
/// A suspended operation resumes on whichever worker reaps its completion (or steals the task). A
/// cancelled one (join_handle::cancel, corio::timeout) is withdrawn with IORING_OP_ASYNC_CANCEL
/// and throws operation_cancelled (timed_out) unless it completed first; a write interrupted that
/// way may have written part of its buffer. The position is a plain member: a file must not be
/// read or written at its position by two tasks at once. Destroying an open file closes it
/// without waiting.
class file {
 public:
  /// Not open.
  file() noexcept = default;
  /// Takes over `other`'s fd and position; `other` is left not open.
  file(file&&) noexcept = default;
  /// Closes this file's fd (without waiting), then takes over `other`'s.
  file& operator=(file&&) noexcept = default;

  /// `co_await file::open("data.bin", open_mode::read)`; `perms` apply when creating.
  [[nodiscard]] static detail::open_op open(std::string path, open_mode mode,
                                            unsigned perms = 0644) {
    return detail::open_op(std::move(path), mode, perms);
  }

  /// Reads up to `buf.size()` bytes at `offset`; fewer at the end of the file, 0 past it.
  [[nodiscard]] detail::positioned_op read_at(std::span<std::byte> buf, std::uint64_t offset) {
    return {fd_, detail::io_kind::read, buf.data(), buf.size(), false, offset, nullptr, "read_at"};
  }
  /// Reads exactly `buf.size()` bytes at `offset`, or throws corio::errc::unexpected_eof.
  [[nodiscard]] detail::positioned_op read_exact_at(std::span<std::byte> buf,
                                                    std::uint64_t offset) {
    return {fd_,     detail::io_kind::read, buf.data(), buf.size(), true, offset,
            nullptr, "read_exact_at"};
  }
  /// Writes all of `buf` at `offset` (resubmitting after short writes).
  [[nodiscard]] detail::positioned_op write_at(std::span<const std::byte> buf,
                                               std::uint64_t offset) {
    return {fd_,
            detail::io_kind::write,
            const_cast<std::byte*>(buf.data()),
            buf.size(),
            true,
            offset,
            nullptr,
            "write_at"};
  }
  /// Reads at the file's position and advances it.
  [[nodiscard]] detail::positioned_op read(std::span<std::byte> buf) {
    return {fd_,   detail::io_kind::read, buf.data(), buf.size(), false, position_, &position_,
            "read"};
  }
  /// Writes all of `buf` at the file's position (at the end with open_mode::append) and advances
  /// it.
  [[nodiscard]] detail::positioned_op write(std::span<const std::byte> buf) {
    std::uint64_t at = append_ ? static_cast<std::uint64_t>(-1) : position_;
    return {fd_,
            detail::io_kind::write,
            const_cast<std::byte*>(buf.data()),
            buf.size(),
            true,
            at,
            &position_,
            "write"};
  }
  /// fsync (or fdatasync with `data_only`).
  [[nodiscard]] detail::fsync_op fsync(bool data_only = false) { return {fd_, data_only}; }
  /// The file's size (statx).
  [[nodiscard]] detail::size_op size() { return detail::size_op(fd_); }
  /// Closes the file (IORING_OP_CLOSE), reporting close's error.
  [[nodiscard]] detail::close_op close() { return detail::close_op(fd_); }

  /// The offset read() and write() use next (corio's own, not the kernel's file position).
  std::uint64_t position() const noexcept { return position_; }
  /// Sets the offset read() and write() use next; no system call, and no check against the size.
  void seek(std::uint64_t position) noexcept { position_ = position; }
  /// False for a default-constructed, moved-from or closed file.
  bool is_open() const noexcept { return fd_.get() >= 0; }
  /// The fd, or -1 when not open; still owned by the file.
  int native_handle() const noexcept { return fd_.get(); }

 private:
  friend class detail::open_op;
  file(int fd, bool append) noexcept : fd_(fd, detail::fd_owner::kind::file), append_(append) {}

  detail::fd_owner fd_;
  std::uint64_t position_ = 0;
  bool append_ = false;
};

}  // namespace corio
