// The machinery shared by corio::scoped, when_all, when_any and completion_queue: a group of
// spawned children that the group can cancel and wait for. lib/child_group.cpp has the protocol.
//
// Ownership:
//
//   owner (scoped's frame, when_all's frame,        child_group (heap, reference counted)
//          a completion_queue) --------ref--------> | lock_, counters, flags
//                                                   | running_: group_child <-> group_child ...
//   child_main frame (a root task) ----ref--------> | ready_ (completion_queue only)
//     | ticket owns its group_child until finish()  | idle_waiters_, event_waiters_
//     +-- owns the user's task<T> frame
//
// The group is freed by whoever drops the last reference: the owner, or the frame of the last
// child to go (a child that finished, or one destroyed by runtime shutdown). A child therefore
// never touches freed group state, whatever happened to its owner -- which is what lets a
// completion_queue be destroyed while its children still run.
#pragma once

#include <corio/detail/wait_list.hpp>
#include <corio/detail/wait_point.hpp>
#include <corio/task.hpp>

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

namespace corio::detail {

class child_group;

/// `void` as std::monostate: the value type the helpers store and return.
template <class T>
using value_or_monostate_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

/// One spawned child of a group. Allocated by the spawner, owned by the child's ticket (in the
/// child's frame) until finish(); then freed by the group, or, in a completion_queue, queued as an
/// event until next() takes it. Links and `linked` are guarded by the group's lock.
struct group_child {
  group_child* prev = nullptr;
  group_child* next = nullptr;
  task_header* header = nullptr;  // the child's root task while it runs (running_ list)
  std::exception_ptr error;       // completion_queue: how the child ended
  std::size_t index = 0;          // when_all / when_any: the child's position
  bool linked = false;            // in running_
  /// Frees the record with its payload.
  void (*destroy)(group_child* self) noexcept = nullptr;
};

/// A wait on a group: for every child to have finished (scoped, when_*, completion_queue::close),
/// or for the next event of a completion_queue. `taken` is the event handed over (nullptr: the
/// queue is exhausted); it is written under the group's lock before the waiter is woken.
struct group_wait : simple_wait {
  enum class kind : std::uint8_t { all_finished, next_event };
  group_wait(child_group& g, kind k, bool is_cancellable) noexcept;
  group_wait(const group_wait&) = delete;
  group_wait& operator=(const group_wait&) = delete;
  /// A frame destroyed between the hand-over and its resumption (shutdown) frees the event.
  ~group_wait();

  child_group& group;
  group_child* taken = nullptr;
};

class child_group {
 public:
  enum class mode : std::uint8_t {
    fail_fast,   // scoped, when_all: the first error cancels every other child (and the body)
    first_wins,  // when_any: the first child to finish cancels the others
    collect,     // completion_queue: each child's end becomes an event; nothing is cancelled
  };
  static constexpr std::size_t no_winner = static_cast<std::size_t>(-1);

  /// A new group with one reference (the caller's).
  static child_group* create(mode m);
  void add_ref() noexcept {
    // Relaxed: the caller already holds a reference, which keeps the group alive.
    refs_.fetch_add(1, std::memory_order_relaxed);
  }
  void release() noexcept;

  /// Makes `frame` (a child_main coroutine, not started, whose ticket owns `c`) a root task of the
  /// current runtime, links `c` into the running list and starts it. A child started after the
  /// group was cancelled (sticky) is cancelled before it runs. On failure (no runtime) destroys
  /// the frame -- which frees `c` -- and throws std::logic_error.
  void start_child(group_child* c, std::coroutine_handle<> frame, promise_base* promise);
  /// The child's last action, on its worker: records how it ended, unlinks it, wakes waiters.
  /// Its frame must not touch the group afterwards except to release its reference.
  void finish(group_child* c, std::exception_ptr error) noexcept;
  /// The child's frame was destroyed before it finished (shutdown): unlink and free `c`.
  /// Wakes nobody: the waiting frames are being destroyed too.
  void abandon(group_child* c) noexcept;
  /// Cancels every running child (join_handle::cancel semantics) and, with `sticky`, every child
  /// started later and the body of scoped. Any thread.
  void cancel_all(bool sticky);

  /// scoped: the calling task's remaining suspensions in the body are cancelled together with
  /// the children (a cancel scope of the task, like corio::timeout's).
  void enter_body();
  /// Leaves the body's cancel scope. `body_error` (may be null) is how the body ended: any
  /// failure cancels the children; it becomes the group's error unless it is the
  /// operation_cancelled of a cancellation of the group or of the task itself.
  void exit_body(const std::exception_ptr& body_error);

  /// After every child finished (a completed all_finished wait): the group's first error
  /// (fail_fast), or the winner's exception (first_wins).
  const std::exception_ptr& error() const noexcept { return error_; }
  /// first_wins, after every child finished: the winner's index, or no_winner.
  std::size_t winner() const noexcept { return winner_; }
  /// Children started and not finished (a snapshot).
  std::size_t pending() const noexcept;
  /// completion_queue: events not taken yet (a snapshot).
  std::size_t ready() const noexcept;

 private:
  friend struct group_wait;
  explicit child_group(mode m) noexcept : mode_(m) {}
  ~child_group();
  void unlink_locked(group_child* c) noexcept;
  void cancel_locked();
  void deliver_locked(group_child* c) noexcept;
  void wake_all_finished_locked() noexcept;
  static bool attempt_all_finished(simple_wait* w) noexcept;
  static void enroll_all_finished(simple_wait* w) noexcept;
  static bool attempt_next_event(simple_wait* w) noexcept;
  static void enroll_next_event(simple_wait* w) noexcept;

  std::atomic<std::size_t> refs_{1};
  mutable spin_lock lock_{spin_lock::home_bias};
  // Guarded by lock_:
  group_child* running_ = nullptr;     // children started and not finished, newest first
  group_child* ready_head_ = nullptr;  // completion_queue: finished children, in finishing order
  group_child* ready_tail_ = nullptr;
  std::size_t pending_ = 0;  // length of running_
  std::size_t ready_count_ = 0;
  wait_list idle_waiters_;   // all_finished waits
  wait_list event_waiters_;  // next_event waits
  std::exception_ptr error_;
  std::size_t winner_ = no_winner;
  task_header* body_task_ = nullptr;  // scoped: the task running the body, while it runs
  bool cancelled_ = false;            // sticky cancellation (scoped, when_*)
  const mode mode_;
  cancel_scope body_scope_;  // scoped: entered by enter_body, in body_task_'s scope chain
};

/// An owning reference to a group (the owner's; see the diagram above).
class group_ref {
 public:
  explicit group_ref(child_group::mode m) : g_(child_group::create(m)) {}
  group_ref(group_ref&& other) noexcept : g_(std::exchange(other.g_, nullptr)) {}
  group_ref& operator=(group_ref&& other) noexcept {
    if (this != &other) {
      if (g_ != nullptr) g_->release();
      g_ = std::exchange(other.g_, nullptr);
    }
    return *this;
  }
  group_ref(const group_ref&) = delete;
  group_ref& operator=(const group_ref&) = delete;
  ~group_ref() {
    if (g_ != nullptr) g_->release();
  }
  child_group* get() const noexcept { return g_; }
  child_group* operator->() const noexcept { return g_; }
  child_group& operator*() const noexcept { return *g_; }

 private:
  child_group* g_;
};

/// A child's hold on its group and its record, a parameter of child_main (so it lives exactly as
/// long as the child's frame). If the frame goes without finish() having run -- never started
/// because spawning failed, or destroyed by shutdown -- its destructor abandons the record.
class child_ticket {
 public:
  child_ticket(child_group& g, group_child* c) noexcept : g_(&g), c_(c) { g.add_ref(); }
  child_ticket(child_ticket&& other) noexcept
      : g_(std::exchange(other.g_, nullptr)), c_(std::exchange(other.c_, nullptr)) {}
  child_ticket(const child_ticket&) = delete;
  child_ticket& operator=(const child_ticket&) = delete;
  child_ticket& operator=(child_ticket&&) = delete;
  ~child_ticket() {
    if (g_ == nullptr) return;
    if (c_ != nullptr) g_->abandon(c_);
    g_->release();
  }
  group_child* record() const noexcept { return c_; }
  void finish(std::exception_ptr error) noexcept {
    g_->finish(std::exchange(c_, nullptr), std::move(error));
  }

 private:
  child_group* g_;
  group_child* c_;
};

/// The root coroutine of every child: runs the user's task, hands its value to `sink`, and
/// reports to the group. The user's frame is destroyed before finish(), so the child's
/// destructors have run by the time the group's waiters wake.
template <class T, class Sink>
task<> child_main(child_ticket ticket, task<T> t, Sink sink) {
  std::exception_ptr error;
  try {
    task<T> own = std::move(t);
    if constexpr (std::is_void_v<T>) {
      co_await std::move(own);
      sink(ticket.record(), std::monostate{});
    } else {
      sink(ticket.record(), co_await std::move(own));
    }
  } catch (...) {
    error = std::current_exception();
  }
  ticket.finish(std::move(error));
}

/// Starts `t` as a child of `g`; `c` (freshly allocated) belongs to the child from here on.
template <class T, class Sink>
void spawn_child(child_group& g, group_child* c, task<T> t, Sink sink) {
  task<> w = child_main<T, Sink>(child_ticket(g, c), std::move(t), std::move(sink));
  auto h = w.release();
  g.start_child(c, h, &h.promise());  // a task<>: no result cell
}

/// A plain record (scoped, when_*), freed with `delete`.
group_child* new_plain_child(std::size_t index);

/// Ignores the value (scoped's children).
struct discard_sink {
  template <class V>
  void operator()(group_child*, V&&) const noexcept {}
};

/// Stores the value into a slot of the owner's frame, which outlives the child.
template <class V>
struct slot_sink {
  std::optional<V>* slot;
  void operator()(group_child*, V&& v) const { slot->emplace(std::move(v)); }
};

/// `co_await all_finished(g, cancellable)`: waits until no child of `g` runs. Returns false if
/// the (cancellable) wait was cancelled first.
class all_finished : group_wait {
 public:
  all_finished(child_group& g, bool is_cancellable) noexcept
      : group_wait(g, kind::all_finished, is_cancellable) {}
  bool await_ready() noexcept { return false; }  // suspend() attempts first
  bool await_suspend(std::coroutine_handle<> h) { return suspend(h); }
  bool await_resume() noexcept { return simple_wait::finish(); }
};

/// Waits for every child of `g`. If the waiting task is cancelled meanwhile (join_handle::cancel,
/// or a corio::timeout around the helper), cancels the children and still waits for all of them,
/// uncancellably: they may borrow from the waiting frame. Returns whether that happened.
task<bool> join_children(child_group& g);

}  // namespace corio::detail
