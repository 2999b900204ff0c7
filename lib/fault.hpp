// Fault injection behind the ring seam (ring.hpp), built only with -Dfault_injection=true
// (CORIO_FAULT_INJECTION); the production library contains none of it.
//
// CORIO_FAULTS (read at every ring's construction) is a comma-separated list of key=value:
//   seed=N     the PRNG seed (absent: one from the clock, printed to stderr once per process)
//   short=P    per read/write/recv/send/readv/writev SQE on a pipe or stream socket: ask for fewer
//              bytes (or iovecs), so it really transfers less -- a legal short result
//   reorder=P  per CQE: hold it back and deliver it at the next reap, after younger ones
//   submit=P   per submit: fail with -EAGAIN/-EBUSY (or -EINTR for a wait) without entering
//   error=P    per read/write/recv/send/readv/writev/sendmsg/recvmsg/accept/connect SQE: make it a
//   NOP
//              that completes with an error the kernel could give it instead (not transparent)
//   entries=N  SQ entries of every ring, whatever runtime_options::ring_entries says (CQ: 4N)
//   partial=P  per submit of two or more new SQEs: the kernel takes only the first k of them
//              (never splitting a link chain) and the call returns k without waiting, as
//              io_uring_enter does when it stops early; the rest stay queued for the next submit
//   eager=P    per SQE of an operation: submit it as soon as it is prepared and run the kernel's
//              task work, so that its completion can be in the CQ before the awaiter's
//              await_suspend has returned ("complete on submit")
//   setup=E    every io_uring_setup fails with errno E (ENOSYS, EPERM, ENOMEM, EINVAL, EMFILE or
//              a number), as on a kernel without io_uring, under seccomp or io_uring_disabled
// Each ring draws from its own PRNG, seeded from the seed and the ring's creation number. Worker
// threads interleave freely, so a seed replays the same decisions per ring only as far as the
// order of operations on that ring repeats: reproduction is best-effort.
#pragma once

#include <liburing.h>

#include <cstdint>
#include <string>

namespace corio::detail::fault {

struct config {
  std::uint64_t seed = 0;
  double short_p = 0, reorder_p = 0, submit_p = 0, error_p = 0, partial_p = 0, eager_p = 0;
  unsigned entries = 0;  // 0: as configured
  int setup_errno = 0;
  bool active() const noexcept {
    return short_p > 0 || reorder_p > 0 || submit_p > 0 || error_p > 0 || partial_p > 0 ||
           eager_p > 0 || entries > 0 || setup_errno != 0;
  }
};

/// Parses CORIO_FAULTS; throws std::invalid_argument on an unknown key or a bad value.
config load();

/// `setup`: the errno every io_uring_setup should fail with, or 0 (CORIO_FAULTS read afresh).
int setup_errno();

/// What the modes did since the process started, so that a test can show that its fault really
/// happened: submits cut short by `partial`; SQEs submitted early by `eager`, and how many of
/// those had their CQE in the CQ before their awaiter's await_suspend returned.
struct totals {
  std::uint64_t partial_submits = 0, eager_submits = 0, completed_on_submit = 0;
};
totals counts() noexcept;
void count_completed_on_submit() noexcept;

/// A CQE held back by `reorder`: the fields the worker reads, copied out of the CQ.
struct held_cqe {
  std::uint64_t user_data;
  std::int32_t res;
  std::uint32_t flags;
};

class injector {
 public:
  injector();

  unsigned entries() const noexcept { return cfg_.entries; }
  bool reorder_on() const noexcept { return cfg_.reorder_p > 0; }

  /// Applies `short` and `error` to the SQEs prepared since the last call (each SQE once, even
  /// when a submit fails and they are flushed later). Call before anything flushes the SQ.
  void before_flush(io_uring& r) noexcept;

  /// 0, or the -errno a submit should fail with (without entering the kernel).
  int submit_fault() noexcept;
  /// `partial`: 0 (submit everything), or how many of the SQEs not yet flushed to submit now.
  unsigned partial_submit(const io_uring& r) noexcept;
  /// `eager`: whether to submit the SQE just prepared (the newest) at once.
  bool eager_submit(const io_uring& r) noexcept;
  /// 0 or -EINTR for a wait.
  int wait_fault() noexcept;

  // Held CQEs form a FIFO of at most `capacity`; reap delivers them before any CQ entry.
  static constexpr unsigned capacity = 8;
  unsigned held() const noexcept { return held_count_; }
  held_cqe pop_held() noexcept {
    held_cqe c = held_[held_first_];
    held_first_ = (held_first_ + 1) % capacity;
    --held_count_;
    return c;
  }

  /// What reap does with a CQE fresh from the CQ.
  enum class verdict { deliver, hold, stop };
  verdict judge(const io_uring_cqe& cqe) noexcept;
  void hold(const io_uring_cqe& cqe) noexcept {
    held_[(held_first_ + held_count_) % capacity] = {cqe.user_data, cqe.res, cqe.flags};
    ++held_count_;
  }

 private:
  bool chance(double p) noexcept;
  std::uint64_t next() noexcept;
  void mutate(io_uring_sqe& sqe) noexcept;

  config cfg_;
  std::uint64_t state_;
  unsigned seen_tail_ = 0;  // SQEs before this (liburing's sqe_tail numbering) were judged
  held_cqe held_[capacity]{};
  unsigned held_first_ = 0, held_count_ = 0;
};

}  // namespace corio::detail::fault
