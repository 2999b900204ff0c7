// corio::task<T>: the coroutine type of every asynchronous function in corio.
#pragma once

#include <corio/detail/frame_alloc.hpp>
#include <corio/detail/root.hpp>

#include <coroutine>
#include <cstddef>
#include <exception>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

// Symmetric transfer (await_suspend returning the next coroutine) keeps the stack flat only if the
// compiler turns the transfer into a tail call. Clang always does; GCC 12 only with
// -foptimize-sibling-calls (corio's dependency and corio.pc add it), and never under Address- or
// ThreadSanitizer. There, transfers go through a trampoline instead: the next coroutine is handed
// to the worker loop, which resumes it once the current resumption returned. Both forms
// interoperate.
#if defined(__GNUC__) && !defined(__clang__) && \
    (defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__))
#define CORIO_DETAIL_TRAMPOLINE 1
#else
#define CORIO_DETAIL_TRAMPOLINE 0
#endif

namespace corio {

template <class T = void>
class task;

namespace detail {

/// Trampoline mode: resumes `h` from the worker loop after the current resumption returned (or
/// at once, nested, on a thread that is not a worker).
void resume_after_return(std::coroutine_handle<> h) noexcept;

/// Where a root task's result goes, so that its frame can be destroyed as soon as it finishes
/// (parameters such as a channel sender or a socket are released then, not when it is joined).
/// The cell sits in the task header's allocation; `size` 0 for task<void>.
struct result_cell_ops {
  std::size_t size;
  void (*init)(void* cell) noexcept;
  void (*destroy)(void* cell) noexcept;
};
template <class S>
struct result_cell {
  static void init(void* p) noexcept { ::new (p) std::optional<S>(); }
  static void destroy(void* p) noexcept { static_cast<std::optional<S>*>(p)->~optional(); }
  // Over-aligned results stay in the frame (the header's allocation is aligned for max_align_t).
  static constexpr const result_cell_ops* ops() noexcept {
    if constexpr (alignof(std::optional<S>) <= alignof(std::max_align_t)) {
      return &table;
    } else {
      return nullptr;
    }
  }
  static constexpr result_cell_ops table{sizeof(std::optional<S>), &init, &destroy};
};
inline constexpr result_cell_ops void_cell_ops{0, [](void*) noexcept {}, [](void*) noexcept {}};

/// What promise_base::await_transform hands to `co_await`: forwards to the awaiter of the
/// awaitable, which it holds by value when the awaitable's operator co_await made one (elided into
/// place: immovable awaiters are fine), else by reference -- to an lvalue, or to the temporary of
/// the co_await's own full-expression, which outlives the suspension.
template <class W>
struct sited_awaiter {
  W w;
  decltype(auto) get() noexcept {
    if constexpr (std::is_reference_v<W>) {
      return static_cast<W>(w);  // the awaitable's own value category
    } else {
      return (w);  // an lvalue, as co_await treats a materialized awaiter
    }
  }
  decltype(auto) await_ready() { return get().await_ready(); }
  template <class P>
  decltype(auto) await_suspend(std::coroutine_handle<P> h) {
    return get().await_suspend(h);
  }
  decltype(auto) await_resume() { return get().await_resume(); }
};
template <class A>
auto make_sited_awaiter(A&& a) {
  if constexpr (requires { static_cast<A&&>(a).operator co_await(); }) {
    using W = decltype(static_cast<A&&>(a).operator co_await());
    return sited_awaiter<W>{static_cast<A&&>(a).operator co_await()};
  } else if constexpr (requires { operator co_await(static_cast<A&&>(a)); }) {
    using W = decltype(operator co_await(static_cast<A&&>(a)));
    return sited_awaiter<W>{operator co_await(static_cast<A&&>(a))};
  } else {
    return sited_awaiter<A&&>{static_cast<A&&>(a)};
  }
}

/// State shared by every task promise, whatever its value type.
///
/// A nested task (awaited by another coroutine) transfers to `continuation_` when it finishes. A
/// root task (spawned, or the main task of block_on) has `root_` set instead and reports to its
/// header. Exactly one of the two is set once the task has started.
class promise_base {
 public:
  struct final_awaiter {
    bool await_ready() noexcept { return false; }
#if CORIO_DETAIL_TRAMPOLINE
    template <class P>
    void await_suspend(std::coroutine_handle<P> h) noexcept {
      promise_base& p = h.promise();
      if (p.root_ != nullptr) {
        (void)root_final(p.root_);
      } else if (p.continuation_) {
        resume_after_return(p.continuation_);
      }
    }
#else
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
      promise_base& p = h.promise();
      if (p.root_ != nullptr) return root_final(p.root_);
      return p.continuation_ ? p.continuation_ : std::noop_coroutine();
    }
#endif
    void await_resume() noexcept {}
  };

  std::suspend_always initial_suspend() noexcept {
    return {};
  }
  final_awaiter final_suspend() noexcept {
    return {};
  }
  void unhandled_exception() noexcept {
    exception_ = std::current_exception();
  }

  static void* operator new(std::size_t size) {
    return frame_alloc(size);
  }
  static void operator delete(void* block, std::size_t size) noexcept {
    frame_free(block, size);
  }

  /// Records where this coroutine suspends: every `co_await` in a task passes through here, and
  /// the awaitable is awaited as it would be without (sited_awaiter). The call site comes from
  /// the compiler builtins in the default arguments -- three stores per await, no allocation --
  /// and is what runtime::tasks() shows for each frame of a task's async backtrace.
  template <class A>
  auto await_transform(A&& awaitable, const char* file = __builtin_FILE(),
                       const char* function = __builtin_FUNCTION(),
                       unsigned line = __builtin_LINE()) {
    site_file_ = file;
    site_function_ = function;
    site_line_ = line;
    return make_sited_awaiter(static_cast<A&&>(awaitable));
  }

  std::coroutine_handle<> continuation_;
  task_header* root_ = nullptr;
  /// The task this one awaits right now (null when it awaits anything else): the next frame
  /// down the async backtrace. Written by the awaiting side only (task's awaiter), so it is
  /// owned by whichever worker runs the task.
  promise_base* child_ = nullptr;
  /// The last `co_await` this coroutine reached (await_transform); line 0: it has not suspended
  /// since it started.
  const char* site_file_ = nullptr;
  const char* site_function_ = nullptr;
  unsigned site_line_ = 0;
  std::exception_ptr exception_;

  /// Where return_value puts the result: a root task's cell, or null (in the frame).
  void* root_result_cell() const noexcept {
    return root_ != nullptr ? task_result_cell(root_) : nullptr;
  }
};

template <class T>
class task_promise final : public promise_base {
 public:
  /// How to make a root task's result cell for T (null: the result stays in the frame). Passed
  /// where a task becomes a root (spawn, block_on, a scope's child), not stored in the promise:
  /// every byte of the promise is in every frame, and only root frames need it.
  static constexpr const result_cell_ops* cell_ops() noexcept { return result_cell<T>::ops(); }
  task<T> get_return_object() noexcept;

  template <class U = T>
  requires std::is_convertible_v<U&&, T>
  void return_value(U&& value) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
    if (void* cell = root_result_cell()) {
      static_cast<std::optional<T>*>(cell)->emplace(std::forward<U>(value));
    } else {
      value_.emplace(std::forward<U>(value));
    }
  }

  /// Rethrows the task's exception, or gives access to its value.
  T& result() & {
    if (exception_) std::rethrow_exception(exception_);
    return *value_;
  }
  T&& result() && {
    if (exception_) std::rethrow_exception(exception_);
    return std::move(*value_);
  }

 private:
  std::optional<T> value_;
};

template <class T>
class task_promise<T&> final : public promise_base {
 public:
  static constexpr const result_cell_ops* cell_ops() noexcept { return result_cell<T*>::ops(); }
  task<T&> get_return_object() noexcept;
  void return_value(T& value) noexcept {
    if (void* cell = root_result_cell()) {
      static_cast<std::optional<T*>*>(cell)->emplace(std::addressof(value));
    } else {
      value_ = std::addressof(value);
    }
  }
  T& result() {
    if (exception_) std::rethrow_exception(exception_);
    return *value_;
  }

 private:
  T* value_ = nullptr;
};

template <>
class task_promise<void> final : public promise_base {
 public:
  static constexpr const result_cell_ops* cell_ops() noexcept { return &void_cell_ops; }
  task<void> get_return_object() noexcept;
  void return_void() noexcept {}
  void result() {
    if (exception_) std::rethrow_exception(exception_);
  }
};

[[noreturn]] void throw_empty_task();

}  // namespace detail

/// A lazily started, move-only coroutine returning T (or nothing, for task<>).
///
/// Nothing runs until the task is awaited (`co_await t`), spawned (corio::spawn) or given to
/// runtime::block_on. Awaiting it runs it as a child of the awaiting coroutine, on the same thread,
/// and resumes the awaiter by symmetric transfer when it finishes, so any number of synchronous
/// completions in a loop does not grow the stack. The awaiter gets the value, or the exception the
/// task threw is rethrown in the awaiter.
///
/// Destroying a task that has not finished destroys its frame (and, transitively, the frames of
/// the tasks it was awaiting). A task does not cancel anything by itself and holds no thread.
template <class T>
class [[nodiscard]] task {
 public:
  /// The coroutine promise (for the compiler; not for direct use).
  using promise_type = detail::task_promise<T>;
  /// What `co_await` on the task yields.
  using value_type = T;

  /// An empty task (valid() is false): awaiting or spawning it throws std::logic_error.
  task() noexcept = default;
  /// Takes over `other`'s coroutine; `other` is left empty.
  task(task&& other) noexcept : h_(std::exchange(other.h_, nullptr)) {}
  /// Destroys this task's coroutine frame (without running it further), then takes over
  /// `other`'s.
  task& operator=(task&& other) noexcept {
    if (this != &other) {
      if (h_) h_.destroy();
      h_ = std::exchange(other.h_, nullptr);
    }
    return *this;
  }
  task(const task&) = delete;
  task& operator=(const task&) = delete;
  ~task() {
    if (h_) h_.destroy();
  }

  /// False for a default-constructed or moved-from task.
  [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(h_); }
  /// True once the task ran to completion (it holds a value or an exception).
  [[nodiscard]] bool done() const noexcept { return h_ && h_.done(); }

  /// Awaiting an lvalue task yields a reference to its value; awaiting an rvalue moves it out.
  /// Awaiting an empty task throws std::logic_error; awaiting a finished one does not suspend.
  /// The awaited task runs as part of the awaiting root task, so cancelling that one
  /// (join_handle::cancel) cancels the operations the awaited task suspends in.
  auto operator co_await() & noexcept {
    struct awaiter : awaiter_base {
      decltype(auto) await_resume() {
        this->unlink();
        return this->h_.promise().result();
      }
    };
    return awaiter{{h_}};
  }
  /// Awaits the task and moves its value out (or rethrows its exception); see the lvalue form.
  auto operator co_await() && noexcept {
    struct awaiter : awaiter_base {
      decltype(auto) await_resume() {
        this->unlink();
        if constexpr (std::is_void_v<T>) {
          this->h_.promise().result();
        } else if constexpr (std::is_reference_v<T>) {
          return this->h_.promise().result();
        } else {
          return T(std::move(this->h_.promise()).result());
        }
      }
    };
    return awaiter{{h_}};
  }

  /// Gives up ownership of the coroutine frame (used by spawn and block_on).
  [[nodiscard]] std::coroutine_handle<promise_type> release() noexcept {
    return std::exchange(h_, nullptr);
  }

 private:
  friend promise_type;
  explicit task(std::coroutine_handle<promise_type> h) noexcept : h_(h) {}

  // An awaiting task links its promise to the awaited one (promise_base::child_) for the
  // duration of the await, so a task's frames can be walked from its root down; an awaiting
  // coroutine of another type simply ends the chain.
  struct awaiter_base {
    std::coroutine_handle<promise_type> h_;
    detail::promise_base* parent_ = nullptr;
    bool await_ready() const {
      if (!h_) detail::throw_empty_task();
      return h_.done();
    }
    template <class P>
    void link(std::coroutine_handle<P> awaiting) noexcept {
      h_.promise().continuation_ = awaiting;
      if constexpr (std::is_base_of_v<detail::promise_base, P>) {
        parent_ = &awaiting.promise();
        parent_->child_ = &h_.promise();
      }
    }
    void unlink() noexcept {
      if (parent_ != nullptr) parent_->child_ = nullptr;
    }
#if CORIO_DETAIL_TRAMPOLINE
    template <class P>
    void await_suspend(std::coroutine_handle<P> awaiting) noexcept {
      link(awaiting);
      detail::resume_after_return(h_);
    }
#else
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> awaiting) noexcept {
      link(awaiting);
      return h_;
    }
#endif
  };

  std::coroutine_handle<promise_type> h_;
};

namespace detail {
template <class T>
task<T> task_promise<T>::get_return_object() noexcept {
  return task<T>(std::coroutine_handle<task_promise>::from_promise(*this));
}
template <class T>
task<T&> task_promise<T&>::get_return_object() noexcept {
  return task<T&>(std::coroutine_handle<task_promise>::from_promise(*this));
}
inline task<void> task_promise<void>::get_return_object() noexcept {
  return task<void>(std::coroutine_handle<task_promise>::from_promise(*this));
}
}  // namespace detail

}  // namespace corio
