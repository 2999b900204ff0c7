// The operation protocol: every ring operation is an io_op living in the awaiting frame.
#pragma once

#include <corio/detail/sched_node.hpp>
#include <corio/detail/wait_point.hpp>

#include <cstdint>

namespace corio::detail {

/// One io_uring operation. It is the awaiter's state, lives in the coroutine frame (no allocation
/// per operation), and the SQE's user_data points at it. Immovable while in flight.
///
/// Life cycle, owned by the worker whose ring carries it: prepared (an SQE points at it) ->
/// submitted -> its final CQE is reaped by that worker, which calls on_cqe (or, by default,
/// stores the result and schedules `node`). Cancellation is one more completion (-ECANCELED);
/// there is no other way out. At shutdown the worker cancels every op and reaps every CQE
/// before any frame is destroyed, so the kernel never writes into freed memory.
///
/// As a wait point, its cancel action submits IORING_OP_ASYNC_CANCEL for it on its own ring and
/// sets `cancelled`; the coroutine resumes when the op's own CQE arrives (-ECANCELED, or its real
/// result if it completed first: a result that happened is never thrown away).
struct io_op : wait_point {
  sched_node node;
  std::int32_t res = 0;
  std::uint32_t cqe_flags = 0;
  /// Called on the ring owner's thread, with that worker, for each CQE of this op. Null: store
  /// res and flags and schedule `node`.
  void (*on_cqe)(io_op* op, std::int32_t res, std::uint32_t flags, worker& w) noexcept = nullptr;
  /// owner-only: links in the owner worker's list of ops in flight (from the SQE until the final
  /// CQE), which shutdown walks to cancel each op by its own user_data.
  io_op* flight_prev = nullptr;
  io_op* flight_next = nullptr;
  bool flight_cancel_sent = false;  // owner-only: shutdown already asked the kernel to cancel it
};

}  // namespace corio::detail
