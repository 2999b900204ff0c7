// corio::make_channel: MPMC channels between tasks (and plain threads), bounded, rendezvous or
// unbounded.
#pragma once

#include <corio/detail/ring_buffer.hpp>
#include <corio/detail/wait_list.hpp>

#include <cerrno>
#include <coroutine>
#include <cstddef>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <system_error>
#include <type_traits>
#include <utility>

namespace corio {

/// Thrown by a send on a channel that is closed (close() was called, or every receiver is gone).
/// A std::system_error with EPIPE. The value was not sent; try_send leaves it with the caller.
class channel_closed : public std::system_error {
 public:
  channel_closed()
      : std::system_error(EPIPE, std::generic_category(), "corio: send on a closed channel") {}
};

/// What try_send did.
enum class send_status {
  sent,    ///< the value is in the channel (or with a receiver); it was moved from
  full,    ///< no room and no waiting receiver; the value was left alone
  closed,  ///< the channel is closed for senders; the value was left alone
};

template <class T>
class sender;
template <class T>
class receiver;

namespace detail {

[[noreturn]] void throw_channel_cancelled();
[[noreturn]] void throw_bad_channel_handle();

/// A receive enrolled in a channel: a waker puts the value (or, when the channel closes, nothing)
/// into `slot`, then wakes the target.
template <class T>
struct recv_waiter : waiter {
  std::optional<T> slot;
  bool done = false;  // set by the waker: `slot` holds the outcome
};

/// A send enrolled in a channel: a waker moves `*value` out (sent) or reports the channel closed.
template <class T>
struct send_waiter : waiter {
  T* value = nullptr;
  bool closed = false;  // set by the waker instead of taking the value
};

/// The shared state of one channel. Invariants, under `lock`:
///  - receivers wait only while `buf` is empty and no sender waits to hand over a value;
///  - senders wait only while `buf` is full (capacity 0: always) and no receiver waits;
///  - once closed for receivers (closed, or no sender left), waiting receivers have been woken
///    with nothing and `buf` only drains; once closed for senders (closed, or no receiver left),
///    waiting senders have been woken with `closed`.
/// Senders and receivers are served in arrival order.
template <class T>
class channel_core {
 public:
  static constexpr std::size_t unbounded = std::numeric_limits<std::size_t>::max();

  explicit channel_core(std::size_t capacity) : capacity_(capacity) {}

  mutable spin_lock lock{spin_lock::home_bias};

  // ---- under `lock` ----
  /// Completes a receive now if it can: a value into `out` (true), or the channel is closed and
  /// drained (true, `out` empty). False: the receive must wait.
  bool recv_locked(std::optional<T>& out) {
    if (!buf_.empty()) {
      out.emplace(std::move(buf_.front()));
      buf_.pop_front();
      // Room now: the longest waiting sender's value moves into the buffer.
      if (auto* s = static_cast<send_waiter<T>*>(senders_.pop_claimed())) {
        buf_.push_back(std::move(*s->value));
        wake(*s->target);
      }
      return true;
    }
    if (auto* s = static_cast<send_waiter<T>*>(senders_.pop_claimed())) {
      out.emplace(std::move(*s->value));  // rendezvous: straight from the sender
      wake(*s->target);
      return true;
    }
    return recv_closed();
  }
  /// Completes a send now if it can: returns sent or closed, or full if it must wait. Moves from
  /// `value` only when it returns sent. `self` (a select's own target) is never paired with.
  send_status send_locked(T& value, const wait_target* self = nullptr) {
    if (send_closed()) return send_status::closed;
    auto* r = static_cast<recv_waiter<T>*>(self != nullptr ? receivers_.pop_claimed_except(self)
                                                           : receivers_.pop_claimed());
    if (r != nullptr) {
      r->slot.emplace(std::move(value));
      r->done = true;
      wake(*r->target);
      return send_status::sent;
    }
    if (buf_.size() < capacity_) {
      buf_.push_back(std::move(value));
      return send_status::sent;
    }
    return send_status::full;
  }
  void enroll_recv(recv_waiter<T>* w) noexcept { receivers_.push_back(w); }
  void enroll_send(send_waiter<T>* w) noexcept { senders_.push_back(w); }
  bool send_closed() const noexcept { return closed_ || receiver_handles_ == 0; }
  bool recv_closed() const noexcept { return closed_ || sender_handles_ == 0; }

  // ---- taking the lock ----
  void add_handle(bool is_sender) noexcept {
    std::lock_guard g(lock);
    ++(is_sender ? sender_handles_ : receiver_handles_);
  }
  void drop_handle(bool is_sender) noexcept {
    std::lock_guard g(lock);
    if (is_sender) {
      if (--sender_handles_ == 0) wake_receivers_closed();
    } else {
      if (--receiver_handles_ == 0) wake_senders_closed();
    }
  }
  void close() noexcept {
    std::lock_guard g(lock);
    closed_ = true;
    wake_senders_closed();
    wake_receivers_closed();
  }
  std::size_t size() const noexcept {
    std::lock_guard g(lock);
    return buf_.size();
  }
  std::size_t size_locked() const noexcept { return buf_.size(); }
  std::size_t capacity() const noexcept { return capacity_; }

 private:
  void wake_senders_closed() noexcept {
    while (auto* s = static_cast<send_waiter<T>*>(senders_.pop_claimed())) {
      s->closed = true;
      wake(*s->target);
    }
  }
  void wake_receivers_closed() noexcept {
    // Receivers wait only on an empty buffer, so none of them misses a value.
    while (auto* r = static_cast<recv_waiter<T>*>(receivers_.pop_claimed())) {
      r->done = true;
      wake(*r->target);
    }
  }

  std::size_t capacity_;
  ring_buffer<T> buf_;
  wait_list receivers_;
  wait_list senders_;
  std::size_t sender_handles_ = 0;
  std::size_t receiver_handles_ = 0;
  bool closed_ = false;
};

/// `co_await rx.recv()` as a single wait. Movable until awaited (select and timeout wrap it).
template <class T>
class recv_awaiter : simple_wait {
 public:
  explicit recv_awaiter(channel_core<T>& ch) noexcept : ch_(&ch) {
    simple_wait::lock = &ch.lock;
    simple_wait::attempt = &do_attempt;
    simple_wait::what = "channel receive";
    simple_wait::enroll = &do_enroll;
    simple_wait::enrollment = &rw_;
    rw_.target = this;
  }
  recv_awaiter(recv_awaiter&& other) noexcept : recv_awaiter(*other.ch_) {}
  ~recv_awaiter() { unlink(); }  // before rw_ goes

  bool await_ready() noexcept { return false; }  // suspend() attempts first
  bool await_suspend(std::coroutine_handle<> h) { return suspend(h); }
  /// The value; nullopt once every sender is gone (or the channel was closed) and it is empty.
  /// Throws corio::operation_cancelled if the task was cancelled while waiting (nothing taken).
  std::optional<T> await_resume() {
    if (!finish()) throw_channel_cancelled();
    return std::move(rw_.slot);
  }

  channel_core<T>& core() const noexcept { return *ch_; }
  /// The blocking form (threads outside the runtime).
  std::optional<T> get_blocking() {
    block();
    return std::move(rw_.slot);
  }

  // As a branch of corio::select (select.hpp: native_branch).
  spin_lock& select_lock() noexcept { return ch_->lock; }
  bool select_try(wait_target*) noexcept { return ch_->recv_locked(rw_.slot); }
  void select_enroll(wait_target* self, int branch) noexcept {
    rw_.target = self;
    rw_.branch = branch;
    ch_->enroll_recv(&rw_);
  }
  void select_unlink() noexcept {
    if (rw_.linked) rw_.list->remove(&rw_);
  }
  std::optional<T> select_result() noexcept { return std::move(rw_.slot); }

 private:
  static bool do_attempt(simple_wait* self) noexcept {
    auto* a = static_cast<recv_awaiter*>(self);
    return a->ch_->recv_locked(a->rw_.slot);
  }
  static void do_enroll(simple_wait* self) noexcept {
    auto* a = static_cast<recv_awaiter*>(self);
    a->ch_->enroll_recv(&a->rw_);
  }

  channel_core<T>* ch_;
  recv_waiter<T> rw_;
};

/// `co_await tx.send(v)` as a single wait; holds the value until it is sent.
template <class T>
class send_awaiter : simple_wait {
 public:
  send_awaiter(channel_core<T>& ch, T value) : ch_(&ch), value_(std::move(value)) {
    simple_wait::lock = &ch.lock;
    simple_wait::attempt = &do_attempt;
    simple_wait::what = "channel send";
    simple_wait::enroll = &do_enroll;
    simple_wait::enrollment = &sw_;
    sw_.target = this;
    sw_.value = &value_;
  }
  send_awaiter(send_awaiter&& other) : send_awaiter(*other.ch_, std::move(other.value_)) {}
  ~send_awaiter() { unlink(); }

  bool await_ready() noexcept { return false; }  // suspend() attempts first
  bool await_suspend(std::coroutine_handle<> h) { return suspend(h); }
  /// Throws corio::channel_closed if the channel closed for senders first, or
  /// corio::operation_cancelled if the task was cancelled while waiting; the value was not sent.
  void await_resume() {
    if (!finish()) throw_channel_cancelled();
    if (sw_.closed) throw channel_closed();
  }

  channel_core<T>& core() const noexcept { return *ch_; }
  /// The blocking form (threads outside the runtime).
  void put_blocking() {
    block();
    if (sw_.closed) throw channel_closed();
  }

  // As a branch of corio::select (select.hpp: native_branch). A send that finds the channel
  // closed completes (and select rethrows channel_closed), as a lone send would.
  spin_lock& select_lock() noexcept { return ch_->lock; }
  bool select_try(wait_target* self) noexcept {
    switch (ch_->send_locked(value_, self)) {
      case send_status::sent:
        return true;
      case send_status::closed:
        sw_.closed = true;
        return true;
      case send_status::full:
        break;
    }
    return false;
  }
  void select_enroll(wait_target* self, int branch) noexcept {
    sw_.target = self;
    sw_.branch = branch;
    ch_->enroll_send(&sw_);
  }
  void select_unlink() noexcept {
    if (sw_.linked) sw_.list->remove(&sw_);
  }
  void select_result() {
    if (sw_.closed) throw channel_closed();
  }

 private:
  static bool do_attempt(simple_wait* self) noexcept {
    auto* a = static_cast<send_awaiter*>(self);
    switch (a->ch_->send_locked(a->value_)) {
      case send_status::sent:
        return true;
      case send_status::closed:
        a->sw_.closed = true;
        return true;
      case send_status::full:
        break;
    }
    return false;
  }
  static void do_enroll(simple_wait* self) noexcept {
    auto* a = static_cast<send_awaiter*>(self);
    a->ch_->enroll_send(&a->sw_);
  }

  channel_core<T>* ch_;
  T value_;
  send_waiter<T> sw_;
};

/// What senders and receivers share: a counted reference to the channel. Each copy is one more
/// handle of its side; the last one of a side to go closes the channel for the other side.
template <class T, bool IsSender>
class channel_handle {
 public:
  channel_handle() noexcept = default;
  channel_handle(const channel_handle& o) noexcept : core_(o.core_) {
    if (core_) core_->add_handle(IsSender);
  }
  channel_handle(channel_handle&& o) noexcept = default;
  channel_handle& operator=(channel_handle o) noexcept {
    std::swap(core_, o.core_);
    return *this;
  }
  ~channel_handle() {
    if (core_) core_->drop_handle(IsSender);
  }

  /// Closes the channel for everyone: senders fail from now on, receivers drain what is queued.
  void close() noexcept {
    if (core_) core_->close();
  }
  /// The values queued now (a snapshot).
  [[nodiscard]] std::size_t size() const noexcept { return core_ ? core_->size() : 0; }
  explicit operator bool() const noexcept { return core_ != nullptr; }

 protected:
  explicit channel_handle(std::shared_ptr<channel_core<T>> c) noexcept : core_(std::move(c)) {
    core_->add_handle(IsSender);
  }
  channel_core<T>& core() const {
    if (!core_) throw_bad_channel_handle();
    return *core_;
  }

  std::shared_ptr<channel_core<T>> core_;
};

}  // namespace detail

/// The sending end of a channel. Copyable: every copy is a sender, and the channel closes for
/// receivers (after they drained it) when the last one is destroyed. A moved-from or
/// default-constructed sender is empty: using it throws std::logic_error.
template <class T>
class sender : public detail::channel_handle<T, true> {
 public:
  sender() noexcept = default;

  /// Sends `value`, waiting while the channel is full (capacity 0: until a receiver takes it).
  /// Throws corio::channel_closed if the channel is closed for senders, before or while waiting;
  /// cancellable (corio::operation_cancelled, nothing sent).
  [[nodiscard]] detail::send_awaiter<T> send(T value) {
    return detail::send_awaiter<T>(core(), std::move(value));
  }
  /// Sends without waiting: moves from `value` only if it returns send_status::sent.
  send_status try_send(T& value) {
    std::lock_guard g(core().lock);
    return core_->send_locked(value);
  }
  /// The same for an rvalue: moved from only if it returns send_status::sent.
  send_status try_send(T&& value) { return try_send(value); }
  /// Sends from a thread outside the runtime, blocking it while the channel is full. Throws
  /// std::logic_error on a worker thread, channel_closed as send does.
  void send_blocking(T value) { detail::send_awaiter<T>(core(), std::move(value)).put_blocking(); }
  /// True once sends fail: closed, or every receiver is gone.
  [[nodiscard]] bool is_closed() const noexcept {
    if (!core_) return true;
    std::lock_guard g(core_->lock);
    return core_->send_closed();
  }

 private:
  using base = detail::channel_handle<T, true>;
  using base::core;
  using base::core_;
  template <class U>
  friend std::pair<sender<U>, receiver<U>> make_channel(std::size_t);
  explicit sender(std::shared_ptr<detail::channel_core<T>> c) noexcept : base(std::move(c)) {}
};

/// The receiving end of a channel. Copyable (MPMC: each value goes to exactly one receiver);
/// the channel closes for senders when the last receiver is destroyed.
template <class T>
class receiver : public detail::channel_handle<T, false> {
 public:
  receiver() noexcept = default;

  /// Receives the next value, waiting while the channel is empty; `std::nullopt` once it is
  /// closed (every sender gone, or close()) and drained. Cancellable (operation_cancelled; a
  /// cancelled receive takes nothing out of the channel).
  [[nodiscard]] detail::recv_awaiter<T> recv() { return detail::recv_awaiter<T>(core()); }
  /// A value if one is there now; nullopt if the channel is empty (see is_closed()).
  std::optional<T> try_recv() {
    std::optional<T> out;
    std::lock_guard g(core().lock);
    if (!core_->recv_locked(out)) return std::nullopt;
    return out;
  }
  /// Receives on a thread outside the runtime, blocking it while the channel is empty. Throws
  /// std::logic_error on a worker thread.
  std::optional<T> recv_blocking() { return detail::recv_awaiter<T>(core()).get_blocking(); }
  /// True once no value will ever come: closed for receivers and drained.
  [[nodiscard]] bool is_closed() const noexcept {
    if (!core_) return true;
    std::lock_guard g(core_->lock);
    return core_->recv_closed() && core_->size_locked() == 0;
  }

 private:
  using base = detail::channel_handle<T, false>;
  using base::core;
  using base::core_;
  template <class U>
  friend std::pair<sender<U>, receiver<U>> make_channel(std::size_t);
  explicit receiver(std::shared_ptr<detail::channel_core<T>> c) noexcept : base(std::move(c)) {}
};

/// A bounded MPMC channel holding up to `capacity` values; capacity 0 is a rendezvous channel
/// (a send completes when a receiver takes the value). Senders and receivers are served in
/// arrival order. T must be nothrow-move-constructible.
template <class T>
std::pair<sender<T>, receiver<T>> make_channel(std::size_t capacity) {
  static_assert(std::is_nothrow_move_constructible_v<T>,
                "corio channels move values under a lock: T must be nothrow-move-constructible");
  auto core = std::make_shared<detail::channel_core<T>>(capacity);
  return {sender<T>(core), receiver<T>(core)};
}

/// An unbounded MPMC channel: send never waits (memory is the limit).
template <class T>
std::pair<sender<T>, receiver<T>> make_channel() {
  return make_channel<T>(detail::channel_core<T>::unbounded);
}

}  // namespace corio
