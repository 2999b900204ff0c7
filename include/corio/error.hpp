// Errors: the exceptions corio throws, and corio::result<T> for code that prefers error codes.
#pragma once

#include <fmt/format.h>

#include <cerrno>
#include <iosfwd>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

namespace corio {

/// Error conditions of corio's own, in the "corio" error category (errno conditions use the
/// generic category). errc is an error code enum: `ec == corio::errc::unexpected_eof` works on any
/// std::error_code.
enum class errc {
  unexpected_eof = 1,  ///< read_exact: the stream ended before the buffer was full
  stream_closed = 2,   ///< the stream was closed by another task while this operation was in flight
};
/// The "corio" error category of corio::errc; one object for the whole process.
const std::error_category& corio_category() noexcept;
/// `e` as a std::error_code in corio_category() (found by argument-dependent lookup).
inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), corio_category()};
}

}  // namespace corio

/// @cond
template <>
struct std::is_error_code_enum<corio::errc> : std::true_type {};
/// @endcond

namespace corio {

/// Thrown at a co_await of a task that was cancelled (join_handle::cancel, or a scope that
/// cancels its children), and at every later co_await of that task that would suspend. A
/// std::system_error with ECANCELED.
class operation_cancelled : public std::system_error {
 public:
  operation_cancelled()
      : std::system_error(ECANCELED, std::generic_category(), "corio: operation cancelled") {}
  /// With a message of its own: what() is `what`, then ": " and the errno's description.
  explicit operation_cancelled(const std::string& what)
      : std::system_error(ECANCELED, std::generic_category(), what) {}
};

/// Thrown by corio::timeout (and by operations with a per-stream timeout) when the deadline passed
/// before the operation completed. A std::system_error with ETIMEDOUT.
class timed_out : public std::system_error {
 public:
  timed_out()
      : std::system_error(ETIMEDOUT, std::generic_category(), "corio: operation timed out") {}
  /// With a message of its own: what() is `what`, then ": " and the errno's description.
  explicit timed_out(const std::string& what)
      : std::system_error(ETIMEDOUT, std::generic_category(), what) {}
};

/// The value of an operation, or the error it failed with: the non-throwing form of every corio
/// operation (`co_await s.read(buf).nothrow()`). Like std::expected<T, std::error_code>.
template <class T>
class [[nodiscard]] result {
 public:
  /// A value (implicit, so that a function returning result<T> can `return value;`).
  result(T value) noexcept(std::is_nothrow_move_constructible_v<T>)  // NOLINT: implicit by design
      : v_(std::in_place_index<0>, std::move(value)) {}
  /// An error (implicit). A default (success) error_code still makes an error result.
  result(std::error_code error) noexcept : v_(std::in_place_index<1>, error) {}  // NOLINT

  /// True if there is a value.
  bool has_value() const noexcept { return v_.index() == 0; }
  /// has_value().
  explicit operator bool() const noexcept { return has_value(); }

  /// The value; throws std::system_error with the error if there is none.
  T& value() & {
    if (!has_value()) throw std::system_error(error());
    return std::get<0>(v_);
  }
  /// The value, moved out; throws std::system_error with the error if there is none.
  T&& value() && {
    if (!has_value()) throw std::system_error(error());
    return std::get<0>(std::move(v_));
  }
  /// The value, unchecked: without one, std::terminate is called (not an exception).
  T& operator*() & noexcept { return std::get<0>(v_); }
  /// The value, unchecked like the lvalue form.
  const T& operator*() const& noexcept { return std::get<0>(v_); }
  /// The value moved out, unchecked like the lvalue form.
  T&& operator*() && noexcept { return std::get<0>(std::move(v_)); }
  /// Member access to the value, unchecked like operator*.
  T* operator->() noexcept { return &std::get<0>(v_); }
  /// A copy of the value, or `fallback` converted to T if there is an error.
  template <class U>
  T value_or(U&& fallback) const& {
    return has_value() ? std::get<0>(v_) : static_cast<T>(std::forward<U>(fallback));
  }
  /// The error; a default (success) error_code when there is a value.
  std::error_code error() const noexcept {
    return has_value() ? std::error_code{} : std::get<1>(v_);
  }

 private:
  std::variant<T, std::error_code> v_;
};

/// The outcome of an operation that yields nothing: success, or the error it failed with.
template <>
class [[nodiscard]] result<void> {
 public:
  /// Success.
  result() noexcept = default;
  /// `error`; a default (success) error_code makes a success.
  result(std::error_code error) noexcept : error_(error) {}  // NOLINT: implicit by design

  /// True on success.
  bool has_value() const noexcept { return !error_; }
  /// has_value().
  explicit operator bool() const noexcept { return has_value(); }
  /// Throws std::system_error with the error, if there is one.
  void value() const {
    if (error_) throw std::system_error(error_);
  }
  /// The error; a default (success) error_code on success.
  std::error_code error() const noexcept { return error_; }

 private:
  std::error_code error_;
};

namespace detail {

/// A std::error_code in the generic (errno) category.
inline std::error_code errno_code(int err) noexcept {
  return {err, std::generic_category()};
}

/// Throws the exception for a failed operation: operation_cancelled for ECANCELED, timed_out for
/// ETIMEDOUT, else std::system_error; `what` names the operation and its object ("read on fd 7").
[[noreturn]] void throw_error(std::error_code error, const std::string& what);

}  // namespace detail

}  // namespace corio

namespace corio {

/// The error's description in corio_category(), e.g. "unexpected end of stream".
[[nodiscard]] std::string to_string(errc e);
/// How fmt's `{}` prints a corio::result<T> that holds an error (after "error: "):
/// "corio:N (description)" for a corio error code, "generic:104 (Connection reset by peer)" for
/// an errno, "category:value (message)" for any other: what result<T> prints on failure.
[[nodiscard]] std::string describe_error(const std::error_code& e);
/// Writes to_string(e); fmt's `{}` formats the same way.
std::ostream& operator<<(std::ostream& os, errc e);

}  // namespace corio

/// @cond
template <>
struct fmt::formatter<corio::errc> : fmt::formatter<std::string_view> {
  template <class Ctx>
  auto format(corio::errc e, Ctx& ctx) const {
    return fmt::formatter<std::string_view>::format(corio::to_string(e), ctx);
  }
};

// `{}` of a corio::result<T>: its value (with T's own formatter, or "ok" for a T fmt cannot
// format, and for result<void>), or "error: " and describe_error() of its error.
template <class T>
struct fmt::formatter<corio::result<T>> {
  constexpr auto parse(fmt::format_parse_context& ctx) { return ctx.begin(); }
  template <class Ctx>
  auto format(const corio::result<T>& r, Ctx& ctx) const {
    if (!r.has_value())
      return fmt::format_to(ctx.out(), "error: {}", corio::describe_error(r.error()));
    if constexpr (std::is_void_v<T>) {
      return fmt::format_to(ctx.out(), "ok");
    } else if constexpr (fmt::is_formattable<T>::value) {
      return fmt::format_to(ctx.out(), "{}", *r);
    } else {
      return fmt::format_to(ctx.out(), "ok");
    }
  }
};
/// @endcond
