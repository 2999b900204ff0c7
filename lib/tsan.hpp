// ThreadSanitizer annotations for what TSan cannot see: the kernel.
//
// - liburing maps and unmaps ring memory with raw system calls, so TSan does not know that a
//   ring's memory was unmapped before a new ring is mapped at the same address by another
//   thread. ring_released() before unmapping and ring_acquired() after mapping model that
//   hand-off through the kernel (one global sync object is enough: it only adds ordering).
// - Ops: the submitting worker releases the op when it prepares its SQE and the reaping worker
//   acquires it at the CQE (the same thread today; the annotation keeps it explicit).
#pragma once

#if defined(__SANITIZE_THREAD__)
#define CORIO_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CORIO_TSAN 1
#endif
#endif

#if defined(CORIO_TSAN)
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
#endif

namespace corio::detail::tsan {

#if defined(CORIO_TSAN)
inline char ring_lifecycle;
inline void acquire(void* p) noexcept {
  __tsan_acquire(p);
}
inline void release(void* p) noexcept {
  __tsan_release(p);
}
inline void ring_acquired() noexcept {
  __tsan_acquire(&ring_lifecycle);
}
inline void ring_released() noexcept {
  __tsan_release(&ring_lifecycle);
}
#else
inline void acquire(void*) noexcept {}
inline void release(void*) noexcept {}
inline void ring_acquired() noexcept {}
inline void ring_released() noexcept {}
#endif

}  // namespace corio::detail::tsan
