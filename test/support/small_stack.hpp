// Runs a function on a thread with a stack of a given size, and measures how much of it was used
// (the stack is pre-filled with a pattern; the high-water mark is where the pattern ends).
#pragma once

#include <pthread.h>
#include <sys/mman.h>

#include <cstddef>
#include <cstring>
#include <exception>
#include <functional>

namespace corio::test {

struct stack_report {
  bool started = false;
  std::size_t used = 0;      // bytes below the top that were ever written
  std::exception_ptr error;  // what the function threw
};

inline stack_report on_stack(std::size_t size, std::function<void()> fn) {
  constexpr unsigned char fill = 0xa5;
  stack_report r;
  void* mem = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return r;
  std::memset(mem, fill, size);
  struct job {
    std::function<void()>* fn;
    std::exception_ptr* error;
  } j{&fn, &r.error};
  pthread_attr_t attr;
  pthread_t t;
  if (pthread_attr_init(&attr) == 0 && pthread_attr_setstack(&attr, mem, size) == 0 &&
      pthread_create(
          &t, &attr,
          [](void* p) -> void* {
            auto* j = static_cast<job*>(p);
            try {
              (*j->fn)();
            } catch (...) {
              *j->error = std::current_exception();
            }
            return nullptr;
          },
          &j) == 0) {
    r.started = true;
    pthread_join(t, nullptr);
    // The stack grows down: untouched pattern bytes are at the low end.
    const auto* p = static_cast<const unsigned char*>(mem);
    std::size_t untouched = 0;
    while (untouched < size && p[untouched] == fill) ++untouched;
    r.used = size - untouched;
  }
  pthread_attr_destroy(&attr);
  ::munmap(mem, size);
  return r;
}

}  // namespace corio::test
