#include "context.hpp"

#include <fmt/format.h>

#include <stdexcept>

namespace corio::detail {
namespace {
thread_local constinit worker* tls_worker = nullptr;
thread_local constinit runtime_core* tls_runtime = nullptr;
}  // namespace

worker* current_worker() noexcept {
  return tls_worker;
}
runtime_core* current_runtime() noexcept {
  return tls_runtime;
}

void throw_not_on_worker(const char* what) {
  throw std::logic_error(fmt::format(
      "corio: {} can only be awaited by a task running on a corio runtime worker", what));
}

thread_context::thread_context(runtime_core* rt, worker* w) noexcept
    : prev_rt_(tls_runtime), prev_worker_(tls_worker) {
  tls_runtime = rt;
  tls_worker = w;
}

thread_context::~thread_context() {
  tls_runtime = prev_rt_;
  tls_worker = prev_worker_;
}

}  // namespace corio::detail
