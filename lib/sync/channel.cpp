// The non-template parts of corio channels.
#include <corio/channel.hpp>
#include <corio/error.hpp>

#include <stdexcept>

namespace corio::detail {

void throw_channel_cancelled() {
  throw operation_cancelled();
}

void throw_bad_channel_handle() {
  throw std::logic_error("corio: use of an empty channel sender or receiver (moved from?)");
}

}  // namespace corio::detail
