#include <corio/error.hpp>

#include <fmt/format.h>

namespace corio::detail {

void throw_error(std::error_code error, const std::string& what) {
  if (error == std::errc::operation_canceled) {
    throw operation_cancelled(fmt::format("{}: operation cancelled", what));
  }
  if (error == std::errc::timed_out) throw timed_out(fmt::format("{}: timed out", what));
  throw std::system_error(error, what);
}

}  // namespace corio::detail
