// The example of the core issue, unchanged, plus the one #include and line that print its result.
// clang-format off
#include <cstdio>

#include <corio/corio.hpp>

corio::task<int> child(int x) { co_await corio::yield_now(); co_return x * 2; }

corio::task<int> main_task() {
  auto h = corio::spawn(child(21));           // runs concurrently, on any worker
  co_await corio::sleep_for(std::chrono::milliseconds(10));
  co_return co_await h;                      // join: the value, or rethrows the child's exception
}

int main() {
  corio::runtime rt{corio::runtime_options{.workers = 4}};   // workers = 1 gives one thread
  int v = rt.block_on(main_task());           // returns main's value, or rethrows main's exception
  std::printf("%d\n", v);
}
