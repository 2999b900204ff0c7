// corio::when_all: run tasks concurrently and wait for all of their values.
#pragma once

#include <corio/detail/child_group.hpp>
#include <corio/error.hpp>
#include <corio/task.hpp>

#include <cstddef>
#include <exception>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace corio {

namespace detail {

template <class... T>
using value_slots = std::tuple<std::optional<value_or_monostate_t<T>>...>;

/// Starts child I of `g` for every task, its value going to slot I. A failure to start one
/// (std::bad_alloc) cancels the group and is returned; the tasks not started are destroyed with
/// the caller's frame.
template <class... T, std::size_t... I>
std::exception_ptr spawn_each(child_group& g, std::tuple<task<T>...>& tasks,
                              value_slots<T...>& slots, std::index_sequence<I...>) {
  try {
    (spawn_child(g, new_plain_child(I), std::move(std::get<I>(tasks)),
                 slot_sink<value_or_monostate_t<T>>{&std::get<I>(slots)}),
     ...);
  } catch (...) {
    g.cancel_all(true);
    return std::current_exception();
  }
  return nullptr;
}

template <class T>
std::exception_ptr spawn_each(child_group& g, std::vector<task<T>>& tasks,
                              std::vector<std::optional<value_or_monostate_t<T>>>& slots) {
  try {
    for (std::size_t i = 0; i < tasks.size(); ++i) {
      spawn_child(g, new_plain_child(i), std::move(tasks[i]),
                  slot_sink<value_or_monostate_t<T>>{&slots[i]});
    }
  } catch (...) {
    g.cancel_all(true);
    return std::current_exception();
  }
  return nullptr;
}

}  // namespace detail

/// `auto [a, b] = co_await corio::when_all(fetch(1), fetch(2))`: starts every task as a child
/// (a root task, like corio::spawn, on any worker; it inherits the caller's task_local values),
/// waits until all finished, and returns their values in argument order; a task<void>'s value
/// is std::monostate.
///
/// The first exception cancels every other task (join_handle::cancel semantics) and is rethrown
/// once all finished; their operation_cancelled exceptions are ignored. If the awaiting task is
/// cancelled (join_handle::cancel, corio::timeout), the tasks are cancelled and still awaited --
/// uncancellably, since they may borrow from the caller -- and operation_cancelled is thrown,
/// unless every task had completed anyway. Resumes on the worker that finished the last task.
template <class... T>
task<std::tuple<detail::value_or_monostate_t<T>...>> when_all(task<T>... ts) {
  static_assert((!std::is_reference_v<T> && ...), "corio::when_all: tasks must return values");
  detail::group_ref g(detail::child_group::mode::fail_fast);
  std::tuple<task<T>...> tasks(std::move(ts)...);
  detail::value_slots<T...> slots;
  std::exception_ptr start_error =
      detail::spawn_each(*g, tasks, slots, std::index_sequence_for<T...>{});
  const bool parent_cancelled = co_await detail::join_children(*g);
  if (start_error) std::rethrow_exception(start_error);
  if (g->error()) std::rethrow_exception(g->error());
  const bool all_done = std::apply([](const auto&... s) { return (s.has_value() && ...); }, slots);
  if (parent_cancelled && !all_done) throw operation_cancelled();
  co_return std::apply(
      [](auto&... s) { return std::tuple<detail::value_or_monostate_t<T>...>(std::move(*s)...); },
      slots);
}

/// The vector form: the values in the order of `tasks`; task<void> gives task<void>. An empty
/// vector completes at once. Same failure and cancellation rules as the variadic form.
template <class T>
task<std::conditional_t<std::is_void_v<T>, void, std::vector<T>>> when_all(
    std::vector<task<T>> tasks) {
  static_assert(!std::is_reference_v<T>, "corio::when_all: tasks must return values");
  detail::group_ref g(detail::child_group::mode::fail_fast);
  std::vector<std::optional<detail::value_or_monostate_t<T>>> slots(tasks.size());
  std::exception_ptr start_error = detail::spawn_each(*g, tasks, slots);
  const bool parent_cancelled = co_await detail::join_children(*g);
  if (start_error) std::rethrow_exception(start_error);
  if (g->error()) std::rethrow_exception(g->error());
  bool all_done = true;
  for (const auto& s : slots) all_done = all_done && s.has_value();
  if (parent_cancelled && !all_done) throw operation_cancelled();
  if constexpr (std::is_void_v<T>) {
    co_return;
  } else {
    std::vector<T> values;
    values.reserve(slots.size());
    for (auto& s : slots) values.push_back(std::move(*s));
    co_return values;
  }
}

}  // namespace corio
