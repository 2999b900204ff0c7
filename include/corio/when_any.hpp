// corio::when_any: run tasks concurrently, keep the first to finish, cancel the others.
#pragma once

#include <corio/detail/child_group.hpp>
#include <corio/error.hpp>
#include <corio/task.hpp>
#include <corio/when_all.hpp>

#include <cstddef>
#include <exception>
#include <optional>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace corio {

/// The vector form's result: which task finished first, and its value.
template <class T>
struct when_any_result {
  std::size_t index;  ///< The position of the winning task in the vector.
  T value;            ///< Its value.
};
/// The vector form's result for tasks returning nothing: which one finished first.
template <>
struct when_any_result<void> {
  std::size_t index;  ///< The position of the winning task in the vector.
};

namespace detail {

template <class... T, std::size_t... I>
std::variant<value_or_monostate_t<T>...> take_winner(value_slots<T...>& slots, std::size_t w,
                                                     std::index_sequence<I...>) {
  std::optional<std::variant<value_or_monostate_t<T>...>> out;
  (void)((I == w ? (out.emplace(std::in_place_index<I>, std::move(*std::get<I>(slots))), true)
                 : false) ||
         ...);
  return std::move(*out);
}

}  // namespace detail

/// `auto r = co_await corio::when_any(a(), b())`: starts every task as a child (a root task on
/// any worker, inheriting the caller's task_local values); the first to finish -- with a value
/// or an exception -- wins. The others are then cancelled (join_handle::cancel semantics) and
/// awaited, and only then does when_any return the winner's value as a std::variant whose
/// index() is the winner's position (a task<void> gives std::monostate), or rethrow the
/// winner's exception. Values of tasks that finished after the winner are dropped.
///
/// If the awaiting task is cancelled before any task finished, every task is cancelled and
/// still awaited (uncancellably: they may borrow from the caller), then operation_cancelled is
/// thrown; a task that finished anyway still wins. Resumes on the worker that finished the
/// last task.
template <class... T>
task<std::variant<detail::value_or_monostate_t<T>...>> when_any(task<T>... ts) {
  static_assert(sizeof...(T) > 0, "corio::when_any needs at least one task");
  static_assert((!std::is_reference_v<T> && ...), "corio::when_any: tasks must return values");
  detail::group_ref g(detail::child_group::mode::first_wins);
  std::tuple<task<T>...> tasks(std::move(ts)...);
  detail::value_slots<T...> slots;
  std::exception_ptr start_error =
      detail::spawn_each(*g, tasks, slots, std::index_sequence_for<T...>{});
  co_await detail::join_children(*g);
  if (start_error) std::rethrow_exception(start_error);
  const std::size_t w = g->winner();
  if (w == detail::child_group::no_winner) throw operation_cancelled();
  if (g->error()) std::rethrow_exception(g->error());
  co_return detail::take_winner<T...>(slots, w, std::index_sequence_for<T...>{});
}

/// The vector form: returns {index, value} of the first task to finish ({index} for
/// task<void>). Throws std::invalid_argument for an empty vector. Same rules as the variadic
/// form.
template <class T>
task<when_any_result<T>> when_any(std::vector<task<T>> tasks) {
  static_assert(!std::is_reference_v<T>, "corio::when_any: tasks must return values");
  if (tasks.empty()) throw std::invalid_argument("corio::when_any: no tasks");
  detail::group_ref g(detail::child_group::mode::first_wins);
  std::vector<std::optional<detail::value_or_monostate_t<T>>> slots(tasks.size());
  std::exception_ptr start_error = detail::spawn_each(*g, tasks, slots);
  co_await detail::join_children(*g);
  if (start_error) std::rethrow_exception(start_error);
  const std::size_t w = g->winner();
  if (w == detail::child_group::no_winner) throw operation_cancelled();
  if (g->error()) std::rethrow_exception(g->error());
  if constexpr (std::is_void_v<T>) {
    co_return when_any_result<void>{w};
  } else {
    co_return when_any_result<T>{w, std::move(*slots[w])};
  }
}

}  // namespace corio
