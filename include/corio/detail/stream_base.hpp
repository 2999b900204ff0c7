// The operations every byte stream has (tcp_stream, unix_stream, fd_stream).
#pragma once

#include <corio/buffer.hpp>
#include <corio/detail/fd_owner.hpp>
#include <corio/detail/io_awaiter.hpp>
#include <corio/detail/pooled_read.hpp>
#include <corio/time.hpp>

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

namespace corio::detail {

/// One buffer in or out: read, read_exact, write, write_all (and file reads and writes).
class transfer_op : public io_awaiter<transfer_op, std::size_t> {
 public:
  transfer_op(fd_owner& owner, io_kind kind, void* buf, std::size_t len, bool exact,
              std::uint64_t offset, std::int64_t timeout_ns, const char* what) noexcept {
    io_args& a = s_.args;
    a.kind = kind;
    a.owner = &owner;
    a.buf = buf;
    a.len = len;
    a.exact = exact;
    a.eof_is_error = exact && (kind == io_kind::read || kind == io_kind::recv);
    a.offset = offset;
    a.timeout_ns = timeout_ns;
    a.what = what;
  }
  std::size_t finish(io_state&, std::size_t n) const noexcept { return n; }
};

/// Several buffers out, completely and in order (a gather write_all): sendmsg on sockets,
/// writev on other fds. The iovec array lives in the awaiter.
class gather_write_op : public io_awaiter<gather_write_op, std::size_t> {
 public:
  gather_write_op(fd_owner& owner, io_kind kind, std::span<const std::span<const std::byte>> bufs,
                  std::int64_t timeout_ns)
      : iov_(bufs.size()) {
    std::size_t total = 0;
    for (std::size_t i = 0; i < bufs.size(); ++i) {
      iov_[i].iov_base = const_cast<std::byte*>(bufs[i].data());
      iov_[i].iov_len = bufs[i].size();
      total += bufs[i].size();
    }
    io_args& a = s_.args;
    a.kind = kind;
    a.owner = &owner;
    a.exact = true;
    a.len = total;
    a.timeout_ns = timeout_ns;
    a.what = "writev";
    point_at_own_iovecs();
  }
  gather_write_op(gather_write_op&& o) noexcept
      : io_awaiter(std::move(o)), iov_(std::move(o.iov_)), msg_() {
    point_at_own_iovecs();
  }
  std::size_t finish(io_state&, std::size_t n) const noexcept { return n; }

 private:
  void point_at_own_iovecs() noexcept {
    msg_.msg_iov = iov_.data();
    msg_.msg_iovlen = iov_.size();
    s_.args.msg = &msg_;
  }
  std::vector<iovec> iov_;
  msghdr msg_{};
};

/// read_some_pooled(): bytes received into a buffer of the worker's read pool.
class pooled_read_op {
 public:
  pooled_read_op(pooled_reader** slot, bool* busy, fd_owner& owner, bool recv,
                 std::int64_t timeout_ns) noexcept {
    w_.slot = slot;
    w_.busy = busy;
    w_.owner = &owner;
    w_.recv = recv;
    w_.timeout_ns = timeout_ns;
  }
  pooled_read_op(pooled_read_op&&) noexcept = default;

  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) { return pooled_read_start(w_, h); }
  pooled_buffer await_resume() {
    if (!pooled_read_ok(w_)) [[unlikely]]
      throw_pooled_read_error(w_);
    return std::move(w_.result);
  }
  /// The non-throwing form: `co_await s.read_some_pooled().nothrow()` yields
  /// corio::result<pooled_buffer>.
  auto nothrow() && {
    struct nothrow_awaiter {
      pooled_read_op op;
      bool await_ready() const noexcept { return false; }
      bool await_suspend(std::coroutine_handle<> h) { return pooled_read_start(op.w_, h); }
      result<pooled_buffer> await_resume() {
        if (!pooled_read_ok(op.w_)) [[unlikely]]
          return pooled_read_error(op.w_);
        return std::move(op.w_.result);
      }
    };
    return nothrow_awaiter{std::move(*this)};
  }
  /// An absolute deadline (corio::timeout uses it): the read gives up with corio::timed_out.
  /// Bytes that arrive later are kept for the next read.
  pooled_read_op with_deadline(std::int64_t deadline_ns) && {
    if (w_.deadline_ns == 0 || deadline_ns < w_.deadline_ns) w_.deadline_ns = deadline_ns;
    return std::move(*this);
  }

 private:
  pooled_wait w_;
};

/// The read and write side shared by sockets and other fds: one owned fd, default timeouts.
class stream_base {
 public:
  /// Reads what is available, up to `buf.size()` bytes; 0 means an orderly end of stream (or an
  /// empty buffer). Throws std::system_error on failure, corio::timed_out after the read timeout.
  [[nodiscard]] transfer_op read(std::span<std::byte> buf) {
    if (pooled_ != nullptr) [[unlikely]]
      throw_mixed_reads("read");
    return transfer_op(fd_, read_kind_, buf.data(), buf.size(), false, npos, read_timeout_ns_,
                       "read");
  }
  /// Reads what is available into a buffer of the current worker's read pool and hands that
  /// buffer over (corio::pooled_buffer; empty at the end of the stream). On a socket the first
  /// call arms one multishot receive on this worker's ring, which goes on receiving between
  /// calls: bytes that arrive while nobody reads queue up in order, and a call with bytes queued
  /// returns at once, without a system call. Other fds read one provided buffer per call. When
  /// the pool has no free buffer the read goes into a heap buffer instead. A cancelled or timed
  /// out call loses nothing (the bytes go to the next call). One pooled read at a time per
  /// stream (std::logic_error otherwise). Once a stream was read this way, read() and
  /// read_exact() on it throw std::logic_error (see reads_pooled): its receive goes on into the
  /// pool. Buffers: runtime_options::read_pool_buffers and read_pool_buffer_size.
  [[nodiscard]] pooled_read_op read_some_pooled() {
    return pooled_read_op(&pooled_, &pooled_busy_, fd_, read_kind_ == io_kind::recv,
                          read_timeout_ns_);
  }
  /// Reads exactly `buf.size()` bytes; an end of stream before that throws
  /// std::system_error(corio::errc::unexpected_eof).
  [[nodiscard]] transfer_op read_exact(std::span<std::byte> buf) {
    if (pooled_ != nullptr) [[unlikely]]
      throw_mixed_reads("read_exact");
    return transfer_op(fd_, read_kind_, buf.data(), buf.size(), true, npos, read_timeout_ns_,
                       "read_exact");
  }
  /// Writes what the kernel takes now, at least one byte unless `buf` is empty; returns the count.
  [[nodiscard]] transfer_op write(std::span<const std::byte> buf) {
    return transfer_op(fd_, send_kind(buf.size()), const_cast<std::byte*>(buf.data()), buf.size(),
                       false, npos, write_timeout_ns_, "write");
  }
  /// Writes all of `buf`, resubmitting after partial writes. Never raises SIGPIPE: a closed peer
  /// is an EPIPE error.
  [[nodiscard]] transfer_op write_all(std::span<const std::byte> buf) {
    return transfer_op(fd_, send_kind(buf.size()), const_cast<std::byte*>(buf.data()), buf.size(),
                       true, npos, write_timeout_ns_, "write_all");
  }
  [[nodiscard]] transfer_op write_all(std::string_view text) { return write_all(as_bytes(text)); }
  /// Writes every buffer completely, in order, in as few system operations as the kernel allows
  /// (sendmsg / writev): a gather write_all.
  [[nodiscard]] gather_write_op writev(std::span<const std::span<const std::byte>> bufs) {
    return gather_write_op(fd_, gather_kind(), bufs, write_timeout_ns_);
  }
  [[nodiscard]] gather_write_op writev(std::initializer_list<std::span<const std::byte>> bufs) {
    return writev(std::span<const std::span<const std::byte>>(bufs.begin(), bufs.size()));
  }

  /// Zero-copy sends: every later write and write_all of at least `min_bytes` (0: none, the
  /// default) on this socket goes out with IORING_OP_SEND_ZC, where the kernel has it (see
  /// kernel_features::op_send_zc; elsewhere such writes copy, as before). The kernel then sends
  /// from the caller's pages instead of copying them into the socket, and the write completes
  /// once it has let go of them, so the buffer is the caller's again when the write returns, as
  /// with any write. On TCP over a network device that is when the bytes are acknowledged, which
  /// makes each zero-copy write take at least a round trip; on loopback the kernel copies anyway
  /// (docs/benchmarks.md measures both paths there). Meant for large writes: below some tens of
  /// KiB pinning the pages costs more than the copy. Throws std::logic_error on a stream that is
  /// not a socket (a pipe or file fd_stream writes with write(2), which has no zero-copy form).
  void set_zero_copy_writes(std::size_t min_bytes) {
    if (write_kind_ != io_kind::send && min_bytes != 0) throw_zero_copy_not_socket();
    // 32 bits, in the padding after the kinds (a stream sits in every connection's frame): a
    // threshold from 4 GiB on means writes of 4 GiB and more.
    zero_copy_min_ = static_cast<std::uint32_t>(std::min<std::size_t>(min_bytes, UINT32_MAX));
  }
  /// A timeout applied to every later read (0: none).
  template <class Rep, class Period>
  void set_read_timeout(std::chrono::duration<Rep, Period> d) noexcept {
    read_timeout_ns_ = duration_to_ns(d);
  }
  /// A timeout applied to every later write (0: none).
  template <class Rep, class Period>
  void set_write_timeout(std::chrono::duration<Rep, Period> d) noexcept {
    write_timeout_ns_ = duration_to_ns(d);
  }

  /// Closes the fd: operations of other tasks still in flight on it fail with
  /// corio::errc::stream_closed; the descriptor number is released only when no ring can act on it
  /// any more. Destroying the stream closes it the same way without waiting.
  [[nodiscard]] close_op close() { return close_op(fd_); }
  bool is_open() const noexcept { return fd_.get() >= 0; }
  /// Whether read_some_pooled has been used on this stream (read and read_exact then throw).
  bool reads_pooled() const noexcept { return pooled_ != nullptr; }
  int native_handle() const noexcept { return fd_.get(); }
  /// Gives up the fd without closing it. After read_some_pooled, its receive is cancelled: bytes
  /// it received that no read took are dropped, and it may take a few more before the
  /// cancellation lands.
  int release() noexcept {
    drop_pooled();
    return fd_.release();
  }

 protected:
  static constexpr std::uint64_t npos = static_cast<std::uint64_t>(-1);
  stream_base() noexcept = default;
  stream_base(int fd, fd_owner::kind k, io_kind read_kind, io_kind write_kind) noexcept
      : fd_(fd, k), read_kind_(read_kind), write_kind_(write_kind) {}
  stream_base(stream_base&& o) noexcept
      : fd_(std::move(o.fd_)),
        read_kind_(o.read_kind_),
        write_kind_(o.write_kind_),
        zero_copy_min_(o.zero_copy_min_),
        read_timeout_ns_(o.read_timeout_ns_),
        write_timeout_ns_(o.write_timeout_ns_),
        pooled_(std::exchange(o.pooled_, nullptr)) {}
  stream_base& operator=(stream_base&& o) noexcept {
    if (this != &o) {
      drop_pooled();
      fd_ = std::move(o.fd_);
      read_kind_ = o.read_kind_;
      write_kind_ = o.write_kind_;
      read_timeout_ns_ = o.read_timeout_ns_;
      write_timeout_ns_ = o.write_timeout_ns_;
      zero_copy_min_ = o.zero_copy_min_;
      pooled_ = std::exchange(o.pooled_, nullptr);
    }
    return *this;
  }
  ~stream_base() { drop_pooled(); }

  void drop_pooled() noexcept {
    if (pooled_ != nullptr) release_pooled_reader(std::exchange(pooled_, nullptr));
  }

  /// How a write of `len` bytes goes out: send_zc from set_zero_copy_writes' size on.
  io_kind send_kind(std::size_t len) const noexcept {
    return zero_copy_min_ != 0 && len >= zero_copy_min_ ? io_kind::send_zc : write_kind_;
  }
  [[noreturn]] static void throw_zero_copy_not_socket();

  io_kind gather_kind() const noexcept {
    return write_kind_ == io_kind::send ? io_kind::sendmsg : io_kind::writev;
  }

  // The small fields first, together: a stream sits in every connection's frame.
  fd_owner fd_;
  io_kind read_kind_ = io_kind::recv;
  io_kind write_kind_ = io_kind::send;
  bool pooled_busy_ = false;         // a read_some_pooled is in progress
  std::uint32_t zero_copy_min_ = 0;  // set_zero_copy_writes: from this size on (0: off)
  std::int64_t read_timeout_ns_ = 0;
  std::int64_t write_timeout_ns_ = 0;
  pooled_reader* pooled_ = nullptr;  // read_some_pooled's state, from its first call
};

}  // namespace corio::detail
