// incoming(): a listener's connections, one by one, from a multishot accept.
#pragma once

#include <corio/detail/fd_owner.hpp>
#include <corio/detail/sched_node.hpp>
#include <corio/detail/wait_point.hpp>
#include <corio/error.hpp>

#include <coroutine>
#include <optional>
#include <utility>

namespace corio::net::detail {

using corio::detail::fd_owner;

struct incoming_state;

/// A next() waiting for a connection. The wait point lets the waiting task be cancelled.
struct incoming_waiter : corio::detail::wait_point {
  corio::detail::sched_node node;
  incoming_waiter* next = nullptr;
  incoming_state* state = nullptr;
  int fd = -1;             // the connection handed over
  int error = 0;           // the listener failed (errno)
  bool ended = false;      // the listener was closed: no more connections
  bool holds_ref = false;  // registered: keeps the state alive until the awaiter is destroyed
};

incoming_state* incoming_create(fd_owner& listener);
/// The listening socket's fd (-1 once closed), for runtime::tasks().
int incoming_listener_fd(const incoming_state* s) noexcept;
/// Drops the user's reference: cancels the multishot accept, closes connections nobody took.
void incoming_release(incoming_state* s) noexcept;
/// Takes a connection without waiting if one is queued (or the end or an error is known).
bool incoming_try_take(incoming_state* s, incoming_waiter& w);
/// Registers `w` (resuming `h`) and arms the multishot accept if needed. Returns false, without
/// suspending, if a result became available meanwhile or the task was cancelled.
bool incoming_wait(incoming_state* s, incoming_waiter& w, std::coroutine_handle<> h);
[[noreturn]] void throw_incoming_error(int err);
/// The awaiter goes away: unlinks it if it is still waiting (shutdown destroys frames in any
/// order), drops its reference, and closes a connection it was handed but never returned.
void incoming_leave(incoming_waiter& w) noexcept;

}  // namespace corio::net::detail

namespace corio::net {

/// The connections of a listener as they arrive (tcp_listener::incoming, unix_listener::incoming).
///
/// One multishot IORING_OP_ACCEPT stays armed on the worker of the first next(); accepted
/// connections queue until taken. `co_await next()` yields the next connection, or nullopt once the
/// listener is closed; it throws std::system_error if accepting fails for good, and
/// operation_cancelled if the task is cancelled (a connection accepted meanwhile stays queued).
/// When the process runs out of file descriptors (EMFILE, ENFILE), accepting pauses with a
/// growing delay (up to 1 s, logged at most once a second) instead of spinning, and resumes by
/// itself. Destroying the object stops accepting and closes connections nobody took. It must not
/// outlive its listener, and next() must not be awaited by two tasks at once.
///
/// A next() that waits resumes on the worker that handed it the connection (usually the one whose
/// ring runs the multishot accept), unless another worker steals the task; a task pinned with
/// spawn_local resumes on its own worker.
template <class Accepted>
class incoming_connections {
 public:
  /// Made by tcp_listener::incoming and unix_listener::incoming. Starts nothing: the multishot
  /// accept is armed by the first next().
  explicit incoming_connections(corio::detail::fd_owner& listener)
      : state_(detail::incoming_create(listener)) {}
  /// Takes over `o`'s accepting and queued connections; `o` must then only be destroyed or
  /// assigned to.
  incoming_connections(incoming_connections&& o) noexcept
      : state_(std::exchange(o.state_, nullptr)) {}
  /// Stops this object's accepting (as the destructor does), then takes over `o`'s.
  incoming_connections& operator=(incoming_connections&& o) noexcept {
    if (this != &o) {
      if (state_) detail::incoming_release(state_);
      state_ = std::exchange(o.state_, nullptr);
    }
    return *this;
  }
  ~incoming_connections() {
    if (state_) detail::incoming_release(state_);
  }

  /// The awaiter of next(); lives in the awaiting frame and cannot be moved.
  class next_op {
   public:
    /// Made by next().
    explicit next_op(detail::incoming_state* s) noexcept { w_.state = s; }
    next_op(const next_op&) = delete;
    next_op& operator=(const next_op&) = delete;
    ~next_op() { detail::incoming_leave(w_); }
    bool await_ready() { return detail::incoming_try_take(w_.state, w_); }
    bool await_suspend(std::coroutine_handle<> h) { return detail::incoming_wait(w_.state, w_, h); }
    /// The next connection, or nullopt once the listener was closed. Throws
    /// corio::operation_cancelled if the task was cancelled while waiting (no connection is lost),
    /// std::system_error if accepting failed for good.
    std::optional<Accepted> await_resume() {
      if (w_.fd >= 0) return Accepted::from_fd(std::exchange(w_.fd, -1));
      if (w_.cancelled) throw operation_cancelled("corio: incoming.next() cancelled");
      if (w_.error != 0) detail::throw_incoming_error(w_.error);
      return std::nullopt;
    }

   private:
    detail::incoming_waiter w_;
  };

  /// Waits for the next connection; see the class comment.
  [[nodiscard]] next_op next() noexcept { return next_op(state_); }

 private:
  detail::incoming_state* state_;
};

}  // namespace corio::net
