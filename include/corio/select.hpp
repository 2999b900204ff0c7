// corio::select: wait for the first of several awaitables; corio::loop_select: select repeatedly.
#pragma once

#include <corio/channel.hpp>
#include <corio/detail/wait_list.hpp>
#include <corio/error.hpp>
#include <corio/spawn.hpp>
#include <corio/task.hpp>
#include <corio/timeout.hpp>

#include <array>
#include <cstddef>
#include <exception>
#include <functional>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>

namespace corio {

namespace detail {

/// A branch that takes part in select's lock-based protocol (channel send and receive): select
/// locks every such branch's primitive, completes one that is ready, or enrolls in all of them
/// with one shared wait_target, so that exactly one of them can complete. The awaiter provides:
///   spin_lock& select_lock();
///   bool select_try(wait_target* self);         // under the lock: complete now if possible
///   void select_enroll(wait_target* self, int branch);  // under the lock
///   void select_unlink();                       // under the lock
///   R select_result();                          // after it won
template <class A>
concept native_branch = requires(A& a, wait_target* t) {
  { a.select_lock() } -> std::same_as<spin_lock&>;
  { a.select_try(t) } -> std::same_as<bool>;
  a.select_enroll(t, 0);
  a.select_unlink();
  a.select_result();
};

/// The type-erased view of a native branch.
struct native_ops {
  void* obj = nullptr;
  spin_lock* lock = nullptr;
  bool (*try_now)(void* obj, wait_target* self) = nullptr;
  void (*enroll)(void* obj, wait_target* self, int branch) noexcept = nullptr;
  void (*unlink)(void* obj) noexcept = nullptr;
  int index = 0;
};

/// The non-template state of one select, in its frame. The base target is what the branches
/// claim: `state` ends as the winning branch's index, or as cancelled.
///
/// Protocol (select.cpp):
///  1. Branches that are not native run as spawned children (select_child) and are racing from
///     the start; one that finishes first claims the target under every native lock.
///  2. The select suspends; once suspended, under every native lock (in address order): if a
///     child already decided, nothing more; else the native branches are tried from a random
///     start (one that is ready wins, and nothing else happens); else the wait is registered
///     (cancellable) and every native branch enrolls.
///  3. Whoever decides (a channel's waker, a child, the cancel action) and the enrolling side
///     each arrive once at the target (two_sided); the second schedules the select.
///  4. On resumption: every native enrollment is unlinked under its lock, every child still
///     running is cancelled, and the select waits -- not cancellably -- until all children have
///     finished: they use the awaitables stored in its frame. A child that completed but lost
///     discards its value (an accepted socket is closed).
struct select_state : wait_target {
  native_ops* natives = nullptr;
  int native_count = 0;
  spin_lock** locks = nullptr;  // the natives' locks, sorted, without duplicates
  int lock_count = 0;

  // Children still running; the select waits for zero (countdown_wait).
  spin_lock children_lock;
  int children = 0;
  wait_list children_waiters;

  select_state() noexcept { two_sided = true; }

  void lock_all() noexcept;
  void unlock_all() noexcept;
  /// A child's claim (step 1); false if the select was already decided.
  bool child_decides(int branch) noexcept;
  /// A child is done with the frame (last thing it does to the select).
  void child_finished() noexcept;
  /// Step 4's unlinking, after resumption.
  void unlink_all() noexcept;
};

/// `co_await select_wait{st}`: steps 2-3.
struct select_wait {
  select_state& st;
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h);
  void await_resume() const noexcept {}
};

/// `co_await children_wait{st}`: waits, uncancellably, until no child runs.
class children_wait : simple_wait {
 public:
  explicit children_wait(select_state& st) noexcept;
  ~children_wait() { unlink(); }
  bool await_ready() noexcept { return false; }  // suspend() attempts first
  bool await_suspend(std::coroutine_handle<> h) { return suspend(h); }
  void await_resume() noexcept { (void)finish(); }

 private:
  static bool attempt_fn(simple_wait* self) noexcept;
  static void enroll_fn(simple_wait* self) noexcept;
  select_state& st_;
};

/// The type-erased view of native branch `aw`, the `index`-th argument.
template <native_branch Aw>
native_ops native_ops_of(Aw& aw, int index) noexcept {
  native_ops o;
  o.obj = &aw;
  o.lock = &aw.select_lock();
  o.try_now = [](void* obj, wait_target* self) { return static_cast<Aw*>(obj)->select_try(self); };
  o.enroll = [](void* obj, wait_target* self, int branch) noexcept {
    static_cast<Aw*>(obj)->select_enroll(self, branch);
  };
  o.unlink = [](void* obj) noexcept { static_cast<Aw*>(obj)->select_unlink(); };
  o.index = index;
  return o;
}

/// Sorts and deduplicates the natives' locks into `out`; returns the count.
int collect_locks(native_ops* natives, int n, spin_lock** out) noexcept;
[[noreturn]] void throw_select_cancelled();

template <class T>
using select_value_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

/// How select keeps an argument: an rvalue moved into its frame, an lvalue by reference.
template <class A>
using select_hold_t = std::conditional_t<std::is_lvalue_reference_v<A>, A, std::decay_t<A>>;

/// What awaiting a held argument yields: an awaitable with its own operator co_await (a task, a
/// join handle) is awaited as an rvalue, so a task's value is moved out; an awaiter in place.
template <class H>
using held_result_t =
    std::conditional_t<has_member_co_await<H>, await_result_t<H&&>, await_result_t<H&>>;

/// Runs a non-native branch as a child task.
template <class A, class V>
task<> select_child(select_state* st, int branch, A* a, std::optional<V>* slot,
                    std::exception_ptr* error) {
  try {
    if constexpr (std::is_void_v<held_result_t<A>>) {
      if constexpr (has_member_co_await<A>) {
        co_await std::move(*a);
      } else {
        co_await *a;
      }
      slot->emplace();
    } else {
      if constexpr (has_member_co_await<A>) {
        slot->emplace(co_await std::move(*a));
      } else {
        slot->emplace(co_await *a);
      }
    }
  } catch (...) {
    *error = std::current_exception();
  }
  if (!st->child_decides(branch)) {
    slot->reset();  // lost: the value is dropped here (an accepted socket closes)
    *error = nullptr;
  }
  st->child_finished();
}

template <class Result, class... A, std::size_t... I>
task<Result> select_impl(std::tuple<A...> args, std::index_sequence<I...>) {
  constexpr int n = static_cast<int>(sizeof...(A));
  constexpr int natives_n = (0 + ... + (native_branch<std::remove_reference_t<A>> ? 1 : 0));
  select_state st;
  std::array<native_ops, natives_n + 1> natives{};
  std::array<spin_lock*, natives_n + 1> locks{};
  std::tuple<std::optional<std::variant_alternative_t<I, Result>>...> slots;
  std::array<std::exception_ptr, n> errors{};
  std::array<join_handle<void>, n> children{};

  int k = 0;
  auto setup = [&]<std::size_t J>(std::integral_constant<std::size_t, J>) {
    using Arg = std::remove_reference_t<std::tuple_element_t<J, std::tuple<A...>>>;
    if constexpr (native_branch<Arg>) {
      natives[k++] = native_ops_of(std::get<J>(args), static_cast<int>(J));
    }
  };
  (setup(std::integral_constant<std::size_t, I>{}), ...);
  st.natives = natives.data();
  st.native_count = natives_n;
  st.locks = locks.data();
  st.lock_count = collect_locks(natives.data(), natives_n, locks.data());

  // Step 1: the other branches start racing. If a spawn fails, the ones already started are
  // cancelled and awaited below like losers.
  std::exception_ptr setup_error;
  auto start = [&]<std::size_t J>(std::integral_constant<std::size_t, J>) {
    using Arg = std::remove_reference_t<std::tuple_element_t<J, std::tuple<A...>>>;
    if constexpr (!native_branch<Arg>) {
      if (setup_error) return;
      try {
        {
          std::lock_guard g(st.children_lock);
          ++st.children;
        }
        try {
          children[J] = spawn(select_child(&st, static_cast<int>(J), &std::get<J>(args),
                                           &std::get<J>(slots), &errors[J]));
        } catch (...) {
          st.child_finished();
          throw;
        }
      } catch (...) {
        setup_error = std::current_exception();
        (void)st.claim(wait_target::cancelled_state);
      }
    }
  };
  (start(std::integral_constant<std::size_t, I>{}), ...);

  if (!setup_error) co_await select_wait{st};
  st.unlink_all();
  int winner = st.outcome();
  for (int j = 0; j < n; ++j) {
    if (j != winner && children[j].valid()) children[j].cancel();
  }
  co_await children_wait{st};
  for (auto& c : children) c.detach();  // all finished; their results are in slots/errors
  if (setup_error) std::rethrow_exception(setup_error);
  if (winner < 0) throw_select_cancelled();

  std::optional<Result> out;
  auto pick = [&]<std::size_t J>(std::integral_constant<std::size_t, J>) {
    if (static_cast<int>(J) != winner) return;
    using Arg = std::remove_reference_t<std::tuple_element_t<J, std::tuple<A...>>>;
    if constexpr (native_branch<Arg>) {
      if constexpr (std::is_void_v<decltype(std::get<J>(args).select_result())>) {
        std::get<J>(args).select_result();  // throws if it failed (a closed channel)
        out.emplace(std::in_place_index<J>);
      } else {
        out.emplace(std::in_place_index<J>, std::get<J>(args).select_result());
      }
    } else {
      if (errors[J]) std::rethrow_exception(errors[J]);
      out.emplace(std::in_place_index<J>, std::move(*std::get<J>(slots)));
    }
  };
  (pick(std::integral_constant<std::size_t, I>{}), ...);
  co_return std::move(*out);
}

}  // namespace detail

/// The result of select: which branch won (`index()`), and its value (`std::get<I>(r)`); a branch
/// whose awaitable yields nothing has std::monostate.
template <class... A>
using select_result =
    std::variant<detail::select_value_t<detail::held_result_t<std::remove_reference_t<A>>>...>;

/// Awaits the first of `awaitables` to complete, and returns its index and value (or rethrows
/// the exception it completed with). Every other branch is cancelled before select returns, and
/// nothing is lost:
///  - a channel receive that loses never takes a value out of its channel, and a send that loses
///    never puts one in (channel branches decide under the channels' locks, atomically);
///  - any other awaitable (a socket operation, a sleep, a task, a join) runs in a child task that
///    is cancelled when another branch wins -- a ring operation through IORING_OP_ASYNC_CANCEL,
///    with its completion reaped before select returns. If it completed anyway, its value is
///    destroyed: an accept that completes while being cancelled has its socket closed (the peer
///    sees the connection reset or closed); a read that lost has consumed its bytes.
/// When several channel branches are ready at once, one is picked at random (no starvation in a
/// loop). Cancelling the selecting task cancels every branch and throws operation_cancelled.
/// Arguments given as rvalues are moved into select's frame; lvalues are used in place.
template <class... A>
[[nodiscard]] task<select_result<A...>> select(A&&... awaitables) {
  static_assert(sizeof...(A) > 0, "corio::select needs at least one awaitable");
  return detail::select_impl<select_result<A...>>(
      std::tuple<detail::select_hold_t<A&&>...>(std::forward<A>(awaitables)...),
      std::index_sequence_for<A...>{});
}

/// A source of loop_select: a channel receiver and the handler for its values.
template <class T, class F>
struct on_source {
  receiver<T>* rx;  ///< The receiver, used in place (not owned).
  F handler;        ///< Called with each value received; a non-void result is awaited.
};

/// `corio::on(rx, handler)`: for loop_select. `handler(T)` is called for every value received on
/// `rx`; it may return a task (or any awaitable), which loop_select awaits before selecting
/// again. `rx` is used in place and must outlive the loop.
template <class T, class F>
[[nodiscard]] on_source<T, std::decay_t<F>> on(receiver<T>& rx, F&& handler) {
  return {&rx, std::forward<F>(handler)};
}

namespace detail {
template <class T, class F>
task<> run_handler(F& handler, T value) {
  using R = std::invoke_result_t<F&, T&&>;
  if constexpr (std::is_void_v<R>) {
    handler(std::move(value));
    co_return;
  } else {
    co_await handler(std::move(value));
  }
}
}  // namespace detail

/// Selects over the sources' receivers again and again, running each value's handler, until every
/// channel is closed and drained; returns then. Handlers run one at a time, on the loop's task, in
/// the order their values were taken. A handler's exception ends the loop and propagates (values
/// not yet taken stay in their channels). Cancellable like select. When several channels have
/// values, each round picks one at random, so a busy channel cannot starve the others.
template <class... T, class... F>
task<> loop_select(on_source<T, F>... sources) {
  constexpr std::size_t n = sizeof...(T);
  static_assert(n > 0, "corio::loop_select needs at least one source");
  std::tuple<on_source<T, F>...> src(std::move(sources)...);
  std::array<bool, n> open{};
  open.fill(true);
  std::size_t remaining = n;
  while (remaining > 0) {
    std::tuple<std::optional<detail::recv_awaiter<T>>...> rounds;
    std::array<detail::native_ops, n> natives{};
    std::array<detail::spin_lock*, n> locks{};
    int count = 0;
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      auto add = [&]<std::size_t J>(std::integral_constant<std::size_t, J>) {
        if (!open[J]) return;
        auto& aw = std::get<J>(rounds).emplace(std::get<J>(src).rx->recv());
        natives[count++] = detail::native_ops_of(aw, static_cast<int>(J));
      };
      (add(std::integral_constant<std::size_t, I>{}), ...);
    }
    (std::index_sequence_for<T...>{});
    detail::select_state st;
    st.natives = natives.data();
    st.native_count = count;
    st.locks = locks.data();
    st.lock_count = detail::collect_locks(natives.data(), count, locks.data());
    co_await detail::select_wait{st};
    st.unlink_all();
    int winner = st.outcome();
    if (winner < 0) detail::throw_select_cancelled();
    task<> run;
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      auto dispatch = [&]<std::size_t J>(std::integral_constant<std::size_t, J>) {
        if (static_cast<int>(J) != winner) return;
        std::optional v = std::get<J>(rounds)->select_result();
        if (!v) {
          open[J] = false;
          --remaining;
        } else {
          run = detail::run_handler(std::get<J>(src).handler, std::move(*v));
        }
      };
      (dispatch(std::integral_constant<std::size_t, I>{}), ...);
    }
    (std::index_sequence_for<T...>{});
    if (run.valid()) co_await std::move(run);
  }
}

}  // namespace corio
