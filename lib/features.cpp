#include <corio/features.hpp>

#include <fmt/format.h>

#include <iterator>

namespace corio {

namespace {

struct named_flag {
  const char* name;
  bool kernel_features::*field;
};

// Every bool of kernel_features, in declaration order; to_string prints them all.
constexpr named_flag flags[] = {
    {"sqpoll", &kernel_features::sqpoll},
    {"single_issuer", &kernel_features::single_issuer},
    {"defer_taskrun", &kernel_features::defer_taskrun},
    {"coop_taskrun", &kernel_features::coop_taskrun},
    {"taskrun_flag", &kernel_features::taskrun_flag},
    {"msg_ring", &kernel_features::msg_ring},
    {"cancel_any", &kernel_features::cancel_any},
    {"ext_arg", &kernel_features::ext_arg},
    {"register_ring_fd", &kernel_features::register_ring_fd},
    {"op_read", &kernel_features::op_read},
    {"op_write", &kernel_features::op_write},
    {"op_send", &kernel_features::op_send},
    {"op_recv", &kernel_features::op_recv},
    {"op_sendmsg", &kernel_features::op_sendmsg},
    {"op_recvmsg", &kernel_features::op_recvmsg},
    {"op_accept", &kernel_features::op_accept},
    {"op_connect", &kernel_features::op_connect},
    {"op_shutdown", &kernel_features::op_shutdown},
    {"op_socket", &kernel_features::op_socket},
    {"op_send_zc", &kernel_features::op_send_zc},
    {"op_sendmsg_zc", &kernel_features::op_sendmsg_zc},
    {"op_openat", &kernel_features::op_openat},
    {"op_close", &kernel_features::op_close},
    {"op_statx", &kernel_features::op_statx},
    {"op_fsync", &kernel_features::op_fsync},
    {"op_fallocate", &kernel_features::op_fallocate},
    {"op_splice", &kernel_features::op_splice},
    {"op_provide_buffers", &kernel_features::op_provide_buffers},
    {"op_uring_cmd", &kernel_features::op_uring_cmd},
    {"multishot_accept", &kernel_features::multishot_accept},
    {"buffer_ring", &kernel_features::buffer_ring},
    {"membarrier", &kernel_features::membarrier},
};

}  // namespace

std::string to_string(const kernel_features& f) {
  std::string out = "kernel=" + (f.kernel_release.empty() ? std::string("?") : f.kernel_release);
  for (const named_flag& n : flags) {
    fmt::format_to(std::back_inserter(out), " {}={}", n.name, f.*n.field ? "yes" : "no");
  }
  return out;
}

std::ostream& operator<<(std::ostream& os, const kernel_features& f) {
  return os << to_string(f);
}

}  // namespace corio
