// corio::completion_queue: spawn tasks, receive their results in the order they finish.
#pragma once

#include <corio/detail/child_group.hpp>
#include <corio/error.hpp>
#include <corio/task.hpp>

#include <coroutine>
#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>

namespace corio {

/// A set of spawned tasks whose results arrive as events, in the order the tasks finish (May's
/// cqueue):
///
///     corio::completion_queue<int> q;
///     for (std::size_t t = 0; t < 10; ++t) q.spawn(job(t), t);
///     while (auto ev = co_await q.next()) use(ev->tag, ev->value());
///
/// Each spawn starts a root task (like corio::spawn, on any worker, inheriting the caller's
/// task_local values). A task's exception is not a failure of the queue: it is delivered in the
/// task's event, and ev->value() rethrows it. `Tag` (std::size_t by default) is any movable type
/// that identifies a task in its event.
///
/// Lifetime: the queue's state is shared with its running tasks, so the queue may be destroyed
/// at any time, even from one of its own tasks' siblings: destruction cancels every pending
/// task (join_handle::cancel semantics) and lets them finish on their own, without waiting
/// (blocking is not allowed on a worker); their results, and events not taken, are dropped.
/// Tasks that borrow from the owner's frame must therefore be waited for before the owner
/// goes: `co_await q.close()` cancels them and waits, or drain next() until it returns
/// std::nullopt.
///
/// Usable from several tasks at once; next() waiters are served in arrival order. The queue
/// must outlive its next() and close() awaiters (its tasks need no such care).
template <class T, class Tag = std::size_t>
class completion_queue {
  static_assert(!std::is_reference_v<T>, "corio::completion_queue: tasks must return values");
  using stored_t = detail::value_or_monostate_t<T>;

  // A task's record: its tag, then its value once it finished (group_child::error holds its
  // exception); queued as the event until next() takes it.
  struct record : detail::group_child {
    explicit record(Tag t) : tag(std::move(t)) { destroy = &record::free; }
    static void free(detail::group_child* c) noexcept { delete static_cast<record*>(c); }
    Tag tag;
    std::optional<stored_t> value;
  };
  struct record_sink {
    void operator()(detail::group_child* c, stored_t&& v) const {
      static_cast<record*>(c)->value.emplace(std::move(v));
    }
  };

 public:
  /// One finished task: its tag, and its value or exception.
  class event {
   public:
    /// The tag given to spawn() with the task.
    Tag tag;

    /// The task's value (nothing for T = void), or rethrows the task's exception. The lvalue
    /// form gives a reference into the event; the rvalue form moves the value out.
    std::add_lvalue_reference_t<T> value() & {
      if (error_) std::rethrow_exception(error_);
      if constexpr (!std::is_void_v<T>) return *value_;
    }
    /// The task's value moved out of the event, or rethrows the task's exception.
    T value() && {
      if (error_) std::rethrow_exception(error_);
      if constexpr (!std::is_void_v<T>) return std::move(*value_);
    }
    /// Whether the task ended with an exception (value() would rethrow it).
    [[nodiscard]] bool has_exception() const noexcept { return error_ != nullptr; }
    /// The task's exception, or null if it returned a value.
    [[nodiscard]] const std::exception_ptr& exception() const noexcept { return error_; }

   private:
    friend class completion_queue;
    explicit event(record&& r)
        : tag(std::move(r.tag)), value_(std::move(r.value)), error_(std::move(r.error)) {}
    std::optional<stored_t> value_;
    std::exception_ptr error_;
  };

  /// The awaiter of next(); lives in the awaiting frame.
  class next_op : detail::group_wait {
   public:
    /// Made by next().
    explicit next_op(detail::child_group& g) noexcept : group_wait(g, kind::next_event, true) {}
    bool await_ready() noexcept { return false; }  // suspend() attempts first
    bool await_suspend(std::coroutine_handle<> h) { return suspend(h); }
    /// Throws operation_cancelled if the waiting task was cancelled (no event is lost: it
    /// stays queued for the next call).
    std::optional<event> await_resume() {
      if (!simple_wait::finish()) throw operation_cancelled();
      if (taken == nullptr) return std::nullopt;
      std::unique_ptr<record> r(static_cast<record*>(std::exchange(taken, nullptr)));
      return event(std::move(*r));
    }
  };

  /// An empty queue; allocates its shared state.
  completion_queue() : g_(detail::child_group::mode::collect) {}
  /// Takes over `other`'s tasks and events; `other` must then only be destroyed or assigned to.
  completion_queue(completion_queue&&) noexcept = default;
  /// Cancels the tasks of this queue (as the destructor does) and takes over `other`'s.
  completion_queue& operator=(completion_queue&& other) noexcept {
    if (this != &other) {
      cancel_all();
      g_ = std::move(other.g_);
    }
    return *this;
  }
  completion_queue(const completion_queue&) = delete;
  completion_queue& operator=(const completion_queue&) = delete;
  /// Cancels the pending tasks and lets them finish without waiting; see the class comment.
  ~completion_queue() { cancel_all(); }

  /// Starts `t` with `tag`. Throws std::logic_error outside a runtime (then `t` is destroyed).
  void spawn(task<T> t, Tag tag) {
    detail::spawn_child(*g_, new record(std::move(tag)), std::move(t), record_sink{});
  }

  /// `co_await q.next()`: the next event in finishing order, waiting for one if tasks are
  /// pending; std::nullopt once no task is pending and no event is queued. Cancellable: throws
  /// operation_cancelled. Resumes on the worker that finished the task (or where it was).
  [[nodiscard]] next_op next() noexcept { return next_op(*g_); }

  /// Cancels every task pending now (join_handle::cancel semantics; any thread). Their events
  /// still arrive, usually holding operation_cancelled. Tasks spawned later are not affected.
  void cancel_all() {
    if (g_.get() != nullptr) g_->cancel_all(false);
  }

  /// `co_await q.close()`: cancels every pending task and waits until all finished. The wait
  /// cannot be interrupted (the tasks may borrow from the caller). Events stay queued for
  /// next().
  task<> close() {
    g_->cancel_all(false);
    co_await detail::all_finished(*g_, false);
  }

  /// Tasks spawned and not finished (a snapshot).
  [[nodiscard]] std::size_t pending() const noexcept { return g_->pending(); }
  /// Events queued and not taken (a snapshot).
  [[nodiscard]] std::size_t ready() const noexcept { return g_->ready(); }
  /// No task pending and no event queued: next() would return std::nullopt (a snapshot).
  [[nodiscard]] bool empty() const noexcept { return pending() == 0 && ready() == 0; }

 private:
  detail::group_ref g_;
};

}  // namespace corio
