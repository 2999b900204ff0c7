// corio::kernel_features: what the running kernel's io_uring offers, as the runtime found it.
#pragma once

#include <ostream>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace corio {

/// What the kernel's io_uring offered when the runtime was constructed (runtime::features()).
///
/// The runtime asks the kernel once, from its constructor, on throw-away rings: every field is
/// the kernel's answer to a setup flag, an IORING_REGISTER_PROBE of opcodes, a registration or a
/// trial request, never an inference from the kernel version. `true` means the kernel accepted
/// it; `false` means it refused, does not know it, or the trial could not run. The setup fields
/// say how every worker ring is created; corio works without each of the other optional ones
/// (msg_ring and register_ring_fd only make it faster) but refuses to run without cancel_any and
/// ext_arg, so those are always true in a constructed runtime.
struct kernel_features {
  /// The kernel release (uname -r), for bug reports.
  std::string kernel_release;

  // ---- how every worker ring is set up (IORING_SETUP_*) ----
  /// IORING_SETUP_SQPOLL: a kernel thread submits (runtime_options::sqpoll).
  bool sqpoll = false;
  /// IORING_SETUP_SINGLE_ISSUER (6.0): the kernel knows only the worker's thread submits.
  bool single_issuer = false;
  /// IORING_SETUP_DEFER_TASKRUN (6.1): completion work runs only when the worker enters the ring,
  /// never by interrupting it.
  bool defer_taskrun = false;
  /// IORING_SETUP_COOP_TASKRUN (5.19): the fallback when DEFER_TASKRUN is refused.
  bool coop_taskrun = false;
  /// IORING_SETUP_TASKRUN_FLAG: the kernel flags pending task work, so an idle poll skips
  /// io_uring_enter when nothing is pending.
  bool taskrun_flag = false;

  // ---- what corio uses ----
  /// IORING_OP_MSG_RING (5.18): workers wake each other ring to ring (else through an eventfd).
  bool msg_ring = false;
  /// IORING_ASYNC_CANCEL_ANY (5.19): shutdown cancels the internal requests (after cancelling
  /// each operation by itself) with one request.
  bool cancel_any = false;
  /// IORING_FEAT_EXT_ARG (5.11): waits with a timeout need no timeout request.
  bool ext_arg = false;
  /// IORING_REGISTER_RING_FDS (5.18): io_uring_enter skips a file lookup.
  bool register_ring_fd = false;

  // ---- opcodes the kernel reports (IORING_REGISTER_PROBE) ----
  bool op_read = false;             ///< IORING_OP_READ
  bool op_write = false;            ///< IORING_OP_WRITE
  bool op_send = false;             ///< IORING_OP_SEND
  bool op_recv = false;             ///< IORING_OP_RECV
  bool op_sendmsg = false;          ///< IORING_OP_SENDMSG
  bool op_recvmsg = false;          ///< IORING_OP_RECVMSG
  bool op_accept = false;           ///< IORING_OP_ACCEPT
  bool op_connect = false;          ///< IORING_OP_CONNECT
  bool op_shutdown = false;         ///< IORING_OP_SHUTDOWN
  bool op_socket = false;           ///< IORING_OP_SOCKET (5.19)
  bool op_send_zc = false;          ///< IORING_OP_SEND_ZC (6.0): zero-copy send
  bool op_sendmsg_zc = false;       ///< IORING_OP_SENDMSG_ZC (6.1)
  bool op_openat = false;           ///< IORING_OP_OPENAT
  bool op_close = false;            ///< IORING_OP_CLOSE
  bool op_statx = false;            ///< IORING_OP_STATX
  bool op_fsync = false;            ///< IORING_OP_FSYNC
  bool op_fallocate = false;        ///< IORING_OP_FALLOCATE
  bool op_splice = false;           ///< IORING_OP_SPLICE
  bool op_provide_buffers = false;  ///< IORING_OP_PROVIDE_BUFFERS (before buffer_ring)
  bool op_uring_cmd = false;        ///< IORING_OP_URING_CMD (5.19): driver passthrough

  // ---- trials ----
  /// IORING_ACCEPT_MULTISHOT (5.19): one accept request yields every connection; found by
  /// arming one on a listening Unix socket and cancelling it.
  bool multishot_accept = false;
  /// IORING_REGISTER_PBUF_RING (5.19): provided-buffer rings. Found by registering one; a refusal
  /// for lack of lockable memory (ENOMEM: RLIMIT_MEMLOCK, unprivileged) still counts as known.
  bool buffer_ring = false;

  // ---- beyond io_uring ----
  /// membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) (4.14), for which the runtime registered the
  /// process. A one-worker runtime then biases the locks of its channels and sync primitives to
  /// its worker's thread, which takes them without a locked instruction (docs/design.md).
  bool membarrier = false;
};

/// One line of `name=yes|no` for every field, after `kernel=<release>`.
[[nodiscard]] std::string to_string(const kernel_features& f);
/// Writes to_string(f); fmt's `{}` formats the same way.
std::ostream& operator<<(std::ostream& os, const kernel_features& f);

}  // namespace corio

/// @cond
template <>
struct fmt::formatter<corio::kernel_features> : fmt::formatter<std::string_view> {
  template <class FormatContext>
  auto format(const corio::kernel_features& f, FormatContext& ctx) const {
    return fmt::formatter<std::string_view>::format(corio::to_string(f), ctx);
  }
};
/// @endcond
