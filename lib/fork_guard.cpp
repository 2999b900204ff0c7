#include "fork_guard.hpp"

#include <corio/detail/frame_alloc.hpp>

#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <mutex>
#include <stdexcept>
#include <string>

namespace corio::detail::fork_guard {

std::atomic<unsigned> g_epoch{0};  // fork_guard.hpp

namespace {

// The live rings. The prepare handler takes the mutex, so that no thread is halfway through an
// insertion at the fork and the child gets a consistent list (and an unlocked mutex: it unlocks
// it in the child handler, on the thread that locked it).
std::mutex g_rings_mutex;
ring_entry* g_rings = nullptr;

void remap_private(void* p, std::size_t size) noexcept {
  if (p == nullptr || size == 0) return;
  // Same address, now private and zeroed: the child's writes stay in the child.
  (void)::mmap(p, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
}

void before_fork() noexcept {
  g_rings_mutex.lock();
  frame_transfer_lock_all();
}

void in_parent() noexcept {
  frame_transfer_unlock_all();
  g_rings_mutex.unlock();
}

// Async-signal-safe calls only (mmap, open, dup3, close): the child of a multi-threaded process.
void in_child() noexcept {
  int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  for (ring_entry* e = g_rings; e != nullptr; e = e->next) {
    io_uring& r = *e->ring;
    std::size_t sqe_size = sizeof(io_uring_sqe) << ((r.flags & IORING_SETUP_SQE128) ? 1 : 0);
    remap_private(r.sq.ring_ptr, r.sq.ring_sz);
    if (r.cq.ring_ptr != r.sq.ring_ptr) remap_private(r.cq.ring_ptr, r.cq.ring_sz);
    remap_private(r.sq.sqes, std::size_t{r.sq.ring_entries} * sqe_size);
    if (null_fd >= 0 && r.ring_fd >= 0) (void)::dup3(null_fd, r.ring_fd, O_CLOEXEC);
  }
  if (null_fd >= 0) ::close(null_fd);
  g_epoch.fetch_add(1, std::memory_order_relaxed);
  frame_transfer_unlock_all();
  g_rings_mutex.unlock();
}

}  // namespace

void install() {
  static const int rc = ::pthread_atfork(before_fork, in_parent, in_child);
  if (rc != 0) throw std::runtime_error("corio: pthread_atfork failed (out of memory)");
}

void check(unsigned created_epoch, const char* what) {
  if (created_epoch == epoch()) return;
  throw std::logic_error(std::string(what) +
                         ": this runtime was created before a fork() and this is the child "
                         "process; the parent keeps its rings and threads. Create a new runtime "
                         "in the child (or exec)");
}

void child_resumed_parent_runtime(const char* where) noexcept {
  std::fprintf(stderr,
               "corio: a %s of a runtime created before fork() got control back in the child "
               "process (pid %ld): a task called fork() and then neither exec'd nor exited. The "
               "child cannot run the parent's runtime; ending it with _exit(127)\n",
               where, static_cast<long>(::getpid()));
  std::fflush(stderr);
  ::_exit(127);
}

void add_ring(ring_entry* e) noexcept {
  std::lock_guard lock(g_rings_mutex);
  e->prev = nullptr;
  e->next = g_rings;
  if (g_rings != nullptr) g_rings->prev = e;
  g_rings = e;
}

void remove_ring(ring_entry* e) noexcept {
  std::lock_guard lock(g_rings_mutex);
  if (e->prev != nullptr) {
    e->prev->next = e->next;
  } else if (g_rings == e) {
    g_rings = e->next;
  }
  if (e->next != nullptr) e->next->prev = e->prev;
  e->prev = e->next = nullptr;
}

}  // namespace corio::detail::fork_guard
