#include <corio/file.hpp>

#include <fcntl.h>
#include <liburing.h>
#include <linux/stat.h>

#include <cstring>

namespace corio::detail {

int open_flags(open_mode m) noexcept {
  int flags = has(m, open_mode::read) && has(m, open_mode::write) ? O_RDWR
              : has(m, open_mode::write)                          ? O_WRONLY
                                                                  : O_RDONLY;
  if (has(m, open_mode::create)) flags |= O_CREAT;
  if (has(m, open_mode::truncate)) flags |= O_TRUNC;
  if (has(m, open_mode::append)) flags |= O_APPEND;
  if (has(m, open_mode::exclusive)) flags |= O_EXCL;
  return flags;
}

open_op::open_op(std::string path, open_mode mode, unsigned perms)
    : path_(std::move(path)), mode_(mode) {
  io_args& a = s_.args;
  a.kind = io_kind::openat;
  a.what = "open";
  a.flags = open_flags(mode);
  a.offset = perms;
  a.buf = path_.data();
}

open_op::open_op(open_op&& o) noexcept
    : io_awaiter(std::move(o)), path_(std::move(o.path_)), mode_(o.mode_) {
  s_.args.buf = path_.data();  // a short path lives inside the string object: re-point
}

file open_op::finish(io_state&, std::size_t fd) {
  return file(static_cast<int>(fd), has(mode_, open_mode::append));
}

positioned_op::positioned_op(fd_owner& owner, io_kind kind, void* buf, std::size_t len, bool exact,
                             std::uint64_t offset, std::uint64_t* position,
                             const char* what) noexcept
    : position_(position) {
  io_args& a = s_.args;
  a.kind = kind;
  a.owner = &owner;
  a.buf = buf;
  a.len = len;
  a.exact = exact;
  a.eof_is_error = exact && kind == io_kind::read;
  a.offset = offset;
  a.what = what;
}

fsync_op::fsync_op(fd_owner& owner, bool data_only) noexcept {
  io_args& a = s_.args;
  a.kind = io_kind::fsync;
  a.owner = &owner;
  a.flags = data_only ? IORING_FSYNC_DATASYNC : 0;
  a.what = data_only ? "fdatasync" : "fsync";
}

size_op::size_op(fd_owner& owner) noexcept {
  static_assert(sizeof(struct statx) <= sizeof statx_);
  io_args& a = s_.args;
  a.kind = io_kind::statx;
  a.owner = &owner;
  a.buf = statx_;
  a.what = "statx";
}

size_op::size_op(size_op&& o) noexcept : io_awaiter(std::move(o)) {
  s_.args.buf = statx_;
}

std::uint64_t size_op::finish(io_state&, std::size_t) noexcept {
  struct statx st;
  std::memcpy(&st, statx_, sizeof st);
  return st.stx_size;
}

}  // namespace corio::detail
