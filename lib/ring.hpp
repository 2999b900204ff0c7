// ring: one io_uring instance, used only by the worker thread that created it.
//
// This is the single seam through which the library talks to io_uring (setup, SQE acquisition,
// submission, waiting, reaping); the fault-injection build replaces what happens behind it.
#pragma once

#include <corio/features.hpp>

#include <liburing.h>

#ifdef CORIO_FAULT_INJECTION
#include "fault.hpp"
#endif

#include "fork_guard.hpp"

#include <cstdint>
#include <string>

namespace corio::detail {

struct ring_config {
  unsigned entries = 256;
  bool sqpoll = false;
  unsigned sqpoll_idle_ms = 50;
};

/// What the running kernel supports, found by creating throw-away rings (probe_kernel): the
/// public report (runtime::features()) plus the setup flags it stands for.
struct kernel_features : corio::kernel_features {
  unsigned setup_flags = 0;  // the IORING_SETUP_* flags every worker ring is created with
};

/// Creates and destroys a ring the way workers will, trying the best flags first and falling back
/// (DEFER_TASKRUN, then COOP_TASKRUN, then no task-run flags), then probes opcodes and trials.
/// Throws std::system_error whose message names the cause and the fix when io_uring is unusable
/// or lacks what corio needs.
///
/// For tests, the environment variable CORIO_TEST_DISABLE_FEATURES (comma-separated names of
/// single_issuer, defer_taskrun, coop_taskrun, taskrun_flag, msg_ring, cancel_any, ext_arg,
/// register_ring_fd, send_zc, membarrier) makes the probe behave as if the kernel lacked them:
/// setup flags are treated as refused (EINVAL), the rest as absent. An unknown name throws
/// std::invalid_argument.
kernel_features probe_kernel(const ring_config& config);

/// One io_uring. Not thread-safe: every member is owner-only, except fd() (read by peers that
/// send IORING_OP_MSG_RING to this ring).
class ring {
 public:
  ring(const ring_config& config, const kernel_features& features);
  ~ring();
  ring(const ring&) = delete;
  ring& operator=(const ring&) = delete;

  int fd() const noexcept { return ring_.ring_fd; }
  unsigned sq_entries() const noexcept { return ring_.sq.ring_entries; }

  /// A free SQE, or nullptr when the SQ is full (the caller submits and retries).
  io_uring_sqe* try_get_sqe() noexcept { return io_uring_get_sqe(&ring_); }

  /// SQEs prepared and not yet consumed by the kernel.
  unsigned sq_pending() const noexcept { return io_uring_sq_ready(&ring_); }

  /// True when entering the kernel would do something: SQEs to submit, task work to run
  /// (DEFER_TASKRUN with TASKRUN_FLAG), or overflowed CQEs to flush. Without TASKRUN_FLAG the
  /// answer is conservatively true whenever `in_flight` is non-zero.
  bool needs_enter(std::uint64_t in_flight) const noexcept {
    if (sq_pending() != 0 || kernel_flags_work()) return true;
    return in_flight != 0 && !taskrun_flag_ && defer_taskrun_;
  }

  /// The kernel flags deferred task work or overflowed CQEs that an enter would process. Always
  /// true on kernels without IORING_SETUP_TASKRUN_FLAG support (the caller must bound its loop).
  bool task_work_pending() const noexcept { return !taskrun_flag_ || kernel_flags_work(); }

  /// Submits pending SQEs without waiting; retries EINTR. Returns SQEs consumed or -errno.
  int submit() noexcept;
  /// Called once an operation's SQE is prepared: nothing, except under fault injection (`eager`).
#ifdef CORIO_FAULT_INJECTION
  void after_prepare() noexcept;
#else
  void after_prepare() noexcept {}
#endif
  /// Submits and runs pending task work (DEFER_TASKRUN), posting ready completions to the CQ.
  int submit_and_get_events() noexcept;
  /// Submits and waits until at least one CQE is ready or `timeout_ns` passed (-1: no timeout).
  /// Returns >= 0, -ETIME on timeout, -EINTR on a signal, or another -errno.
  int submit_and_wait(std::int64_t timeout_ns) noexcept;

  /// Calls f(const io_uring_cqe&) for at most `max` ready CQEs, oldest first, then marks them
  /// consumed; returns the count. The rest stay in the CQ, in order, for the next call.
  template <class F>
  unsigned reap(unsigned max, F&& f) {
#ifdef CORIO_FAULT_INJECTION
    if (fault_.reorder_on() || fault_.held() != 0) return reap_reordered(max, f);
#endif
    // io_uring_for_each_cqe, with the tail read once: CQEs posted meanwhile wait for the next
    // call. The acquire pairs with the kernel's release of the tail: the CQEs before it are
    // written. The head is ours (only this thread consumes).
    unsigned head = *ring_.cq.khead;
    unsigned ready = io_uring_smp_load_acquire(ring_.cq.ktail) - head;
    unsigned n = ready < max ? ready : max;
    unsigned mask = ring_.cq.ring_mask;
    unsigned shift = io_uring_cqe_shift(&ring_);
    for (unsigned i = 0; i < n; ++i) f(ring_.cq.cqes[((head + i) & mask) << shift]);
    io_uring_cq_advance(&ring_, n);
    return n;
  }

  /// Whether a poll would find something without waiting: SQEs to submit, CQEs posted, or task
  /// work or overflowed CQEs the kernel flags (never true merely for ops in flight, unlike
  /// needs_enter: the cheap check a yield makes).
  bool work_ready() const noexcept {
    return sq_pending() != 0 || io_uring_cq_ready(&ring_) != 0 || kernel_flags_work();
  }

  bool cq_has_overflow() const noexcept {
    return io_uring_cq_has_overflow(&ring_);
  }

  /// IORING_REGISTER_PBUF_RING / IORING_UNREGISTER_PBUF_RING (buffer_pool.cpp): 0 or -errno.
  int register_buf_ring(io_uring_buf_reg& reg) noexcept {
    return io_uring_register_buf_ring(&ring_, &reg, 0);
  }
  int unregister_buf_ring(unsigned group) noexcept {
    return io_uring_unregister_buf_ring(&ring_, static_cast<int>(group));
  }

  /// Drops the registration of the ring fd (IORING_REGISTER_RING_FDS), which belongs to the
  /// thread that made it; call on the owner thread before another thread closes the ring.
  void unregister_ring_fd() noexcept;

 private:
  /// IORING_SQ_TASKRUN or IORING_SQ_CQ_OVERFLOW in the SQ ring's flags (acquire: pairs with the
  /// kernel's store, so the CQEs or work it flags are visible after the enter).
  bool kernel_flags_work() const noexcept {
    unsigned flags = __atomic_load_n(ring_.sq.kflags, __ATOMIC_ACQUIRE);
    return (flags & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)) != 0;
  }

  io_uring ring_{};
  fork_guard::ring_entry fork_entry_;  // in the fork guard's list from setup to exit
  bool defer_taskrun_ = false;
  bool taskrun_flag_ = false;
  bool registered_ = false;

#ifdef CORIO_FAULT_INJECTION
  // `reorder` (fault.hpp). Held CQEs are delivered first at the next reap, so each is late by
  // one reap at most; submit_and_wait never sleeps while one is held (that would strand it, and
  // with it a wake-up or an op's completion), it returns at once so that the caller reaps.
  template <class F>
  unsigned reap_reordered(unsigned max, F& f) {
    unsigned n = 0;
    while (n < max && fault_.held() != 0) {
      fault::held_cqe h = fault_.pop_held();
      io_uring_cqe c{};
      c.user_data = h.user_data;
      c.res = h.res;
      c.flags = h.flags;
      f(static_cast<const io_uring_cqe&>(c));
      ++n;
    }
    // Still holding (budget spent): taking more from the CQ would pass the held ones.
    if (fault_.held() != 0) return n;
    unsigned head;
    unsigned taken = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      if (n == max) break;
      fault::injector::verdict v = fault_.judge(*cqe);
      if (v == fault::injector::verdict::stop) break;
      if (v == fault::injector::verdict::hold) {
        fault_.hold(*cqe);
      } else {
        f(static_cast<const io_uring_cqe&>(*cqe));
        ++n;
      }
      ++taken;
    }
    io_uring_cq_advance(&ring_, taken);
    return n;
  }

  int submit_first(unsigned k) noexcept;  // `partial`: submits only the first k new SQEs
  fault::injector fault_;
#endif
};

/// A std::system_error for a failed ring call: "<what> (errno N): <strerror>".
[[noreturn]] void throw_ring_error(int err, const std::string& what);

/// A hint for errors that have one common cause and fix (EMFILE, ENFILE, ENOMEM), else "".
std::string errno_hint(int err);

}  // namespace corio::detail
