// corio::runtime: the public face of runtime_core.
#include "runtime_core.hpp"

#include <corio/runtime.hpp>

namespace corio {

namespace detail {
runtime_core& core_of(runtime& rt) noexcept {
  return *rt.core_;
}
task_header* begin_main(runtime_core& rt, std::coroutine_handle<> frame, promise_base* promise,
                        const result_cell_ops* cell_ops) {
  return rt.begin_main(frame, promise, cell_ops);
}
void run_main(runtime_core& rt, task_header* main) {
  rt.run_main(main);
}
}  // namespace detail

runtime::runtime(runtime_options options)
    : core_(std::make_unique<detail::runtime_core>(std::move(options))) {}

runtime::~runtime() = default;

runtime_stats runtime::stats() const {
  return core_->stats();
}
const kernel_features& runtime::features() const noexcept {
  return core_->features();
}
std::size_t runtime::worker_count() const noexcept {
  return core_->worker_count();
}
const runtime_options& runtime::options() const noexcept {
  return core_->options();
}

}  // namespace corio
