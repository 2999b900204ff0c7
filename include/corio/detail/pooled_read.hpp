// The awaiter state of read_some_pooled (stream_base.hpp); the protocol is in pooled_read.cpp.
#pragma once

#include <corio/detail/sched_node.hpp>
#include <corio/detail/wait_point.hpp>
#include <corio/error.hpp>
#include <corio/pooled_buffer.hpp>
#include <corio/time.hpp>

#include <coroutine>
#include <cstdint>

namespace corio::detail {

class fd_owner;
/// One stream's receive state (multishot receive, queue of received buffers), created by its
/// first read_some_pooled and owned by the stream (pooled_read.cpp).
class pooled_reader;

struct pooled_wait;
/// A deferred action that knows its read.
struct pooled_hop : deferred_action {
  pooled_wait* wait = nullptr;
};

/// One read_some_pooled, in the awaiting frame. Movable until awaited.
struct pooled_wait : wait_point {
  sched_node node;
  pooled_hop hop;       // the trip to the worker that owns the reader, for a task that migrated
  timer_node deadline;  // armed on that worker while waiting with a timeout
  pooled_reader** slot = nullptr;
  pooled_reader* reader = nullptr;  // *slot once started
  bool* busy = nullptr;             // the stream's "a pooled read is in progress"
  fd_owner* owner = nullptr;
  std::int64_t timeout_ns = 0;   // relative, the stream's read timeout (0: none)
  std::int64_t deadline_ns = 0;  // absolute (with_deadline; 0: none)
  int fd = -1;                   // for error messages
  int err = 0;                   // errno of a failed read (0: success or end of stream)
  bool recv = true;              // a socket (multishot receive) or another fd (read)
  bool timed_out = false;
  pooled_buffer result;

  pooled_wait() noexcept = default;
  pooled_wait(pooled_wait&& o) noexcept
      : slot(o.slot),
        busy(o.busy),
        owner(o.owner),
        timeout_ns(o.timeout_ns),
        deadline_ns(o.deadline_ns),
        recv(o.recv) {}
  pooled_wait& operator=(pooled_wait&&) = delete;
  ~pooled_wait() {
    if (reader != nullptr) *busy = false;
  }
};

/// await_suspend: false when the outcome is known without suspending (bytes already queued, an
/// error, cancellation). Throws std::logic_error off a worker or for a second concurrent pooled
/// read on one stream.
bool pooled_read_start(pooled_wait& w, std::coroutine_handle<> h);
/// std::logic_error: `what` (read, read_exact) on a stream that read_some_pooled reads.
[[noreturn]] void throw_mixed_reads(const char* what);
/// The outcome as an error code (success: bytes, or end of stream as an empty buffer).
std::error_code pooled_read_error(const pooled_wait& w) noexcept;
/// Whether the read succeeded, which is pooled_read_error's empty case: inline, so that a read
/// that succeeded makes no call to find out.
inline bool pooled_read_ok(const pooled_wait& w) noexcept {
  return !w.cancelled && !w.timed_out && w.err == 0;
}
/// Throws the failure of a read that was not pooled_read_ok.
[[noreturn]] void throw_pooled_read_error(const pooled_wait& w);
/// Read pools not yet freed, over the process: 0 once every session ended and every pooled
/// buffer and stream was given back (the test suites' "all provided buffers returned" check).
std::int64_t live_read_pools() noexcept;
/// On a worker: the buffers of its read pool that are out (queued in readers or held as
/// pooled_buffer); -1 off a worker or before its first pooled read of the session. For tests.
std::int64_t current_read_pool_out() noexcept;
/// The stream lets go of its reader (destroyed, moved over, or its fd released): a receive in
/// flight is cancelled and the reader freed once its last completion came back. Any thread.
void release_pooled_reader(pooled_reader* r) noexcept;

}  // namespace corio::detail
