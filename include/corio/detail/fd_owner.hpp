// fd_owner: a file descriptor owned by a stream, socket or file, and its safe close.
#pragma once

#include <corio/detail/io_awaiter.hpp>

#include <atomic>
#include <cstdint>

namespace corio::detail {

/// Owns one file descriptor and remembers which workers' rings have carried operations on it.
///
/// Closing (close_owner) must not let a descriptor number be reused while any ring may still
/// act on the old file: it first cancels every operation on the fd (IORING_ASYNC_CANCEL_FD) in
/// each ring that ever carried one -- on the closing worker directly, on the others through a
/// message, which also flushes SQEs prepared there but not yet submitted -- and closes the fd only
/// when all of them are done. Operations of other tasks on the fd then fail with
/// corio::errc::stream_closed; operations started after close see the fd as closed (EBADF).
///
/// Thread safety: `fd` is read by operations being started on any worker while another task may
/// close; the worker set is updated by operations and read by close (a Dekker pair, see
/// note_worker). Moving an fd_owner while an operation is being started on it is a bug.
class fd_owner {
 public:
  enum class kind : std::uint8_t { file, socket, borrowed };

  fd_owner() noexcept = default;
  fd_owner(int fd, kind k) noexcept : fd_(fd), kind_(k) {}
  fd_owner(fd_owner&& o) noexcept
      : fd_(o.fd_.exchange(-1, std::memory_order_acq_rel)),
        workers_(o.workers_.exchange(0, std::memory_order_acq_rel)),
        kind_(o.kind_) {}
  fd_owner& operator=(fd_owner&& o) noexcept;
  fd_owner(const fd_owner&) = delete;
  fd_owner& operator=(const fd_owner&) = delete;
  /// Closes the fd if still open, without waiting (see close_detached).
  ~fd_owner();

  /// The fd, or -1 once closed or released.
  int get() const noexcept { return fd_.load(std::memory_order_acquire); }
  kind type() const noexcept { return kind_; }
  /// Gives up ownership without closing; returns the fd.
  int release() noexcept;

  /// Records that worker `index` is about to submit an operation on the fd and returns the fd to
  /// use (-1 if closed). Called by submit_io on the submitting worker.
  int note_worker(unsigned index) noexcept {
    std::uint64_t bit = worker_bit(index);
    // seq_cst RMW, then seq_cst load of fd_: pairs with close's exchange of fd_ and its load of
    // workers_ (Dekker). Once the bit is set, a relaxed check suffices: close reads it anyway.
    if ((workers_.load(std::memory_order_relaxed) & bit) == 0) {
      workers_.fetch_or(bit, std::memory_order_seq_cst);
    }
    return fd_.load(std::memory_order_seq_cst);
  }

  /// Worker `index`'s bit in workers_.
  static constexpr std::uint64_t worker_bit(unsigned index) noexcept {
    return index < 63 ? std::uint64_t{1} << index : std::uint64_t{1} << 63;
  }

  std::atomic<int> fd_{-1};
  std::atomic<std::uint64_t> workers_{0};  // bit i: worker i (bit 63: any worker >= 63)
  kind kind_ = kind::file;
};

/// Closes `owner`'s fd now, without waiting for the outcome: the same protocol as close_op, with
/// the final close fired and forgotten. Does nothing for a closed, released or borrowed owner.
void close_detached(fd_owner& owner) noexcept;

/// `co_await close_op(owner)`: closes the fd as described above and yields close(2)'s result.
/// Not cancellable: a task cancelled while closing still finishes the close.
struct close_state : io_op {
  int fd = -1;
  void* remote = nullptr;  // the cross-worker part of the protocol, when needed
};
bool submit_close(close_state& s, fd_owner& owner, std::coroutine_handle<> h);

class close_op {
 public:
  explicit close_op(fd_owner& owner) noexcept : owner_(owner) {}
  close_op(close_op&&) noexcept = default;
  bool await_ready() const noexcept { return false; }
  bool await_suspend(std::coroutine_handle<> h) { return submit_close(s_, owner_, h); }
  void await_resume() const {
    if (s_.res < 0) throw_close_error(s_.fd, -s_.res);
  }
  auto nothrow() && {
    struct nothrow_awaiter {
      close_op op;
      bool await_ready() const noexcept { return false; }
      bool await_suspend(std::coroutine_handle<> h) { return submit_close(op.s_, op.owner_, h); }
      result<void> await_resume() const noexcept {
        if (op.s_.res < 0) return errno_code(-op.s_.res);
        return {};
      }
    };
    return nothrow_awaiter{std::move(*this)};
  }

 private:
  [[noreturn]] static void throw_close_error(int fd, int err);
  fd_owner& owner_;
  close_state s_;
};

}  // namespace corio::detail
