#include <corio/error.hpp>

#include <fmt/format.h>

#include <ostream>

namespace corio {

namespace {
class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "corio"; }
  std::string message(int v) const override {
    switch (static_cast<errc>(v)) {
      case errc::unexpected_eof:
        return "unexpected end of stream";
      case errc::stream_closed:
        return "the stream was closed while the operation was in flight";
    }
    return "unknown corio error";
  }
};
}  // namespace

const std::error_category& corio_category() noexcept {
  static const category c;
  return c;
}

std::string to_string(errc e) {
  return corio_category().message(static_cast<int>(e));
}

std::string describe_error(const std::error_code& e) {
  return fmt::format("{}:{} ({})", e.category().name(), e.value(), e.message());
}

std::ostream& operator<<(std::ostream& os, errc e) {
  return os << to_string(e);
}

}  // namespace corio

namespace corio::detail {

void throw_error(std::error_code error, const std::string& what) {
  if (error == std::errc::operation_canceled) {
    throw operation_cancelled(fmt::format("{}: operation cancelled", what));
  }
  if (error == std::errc::timed_out) throw timed_out(fmt::format("{}: timed out", what));
  throw std::system_error(error, what);
}

}  // namespace corio::detail
