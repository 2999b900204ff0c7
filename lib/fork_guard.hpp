// fork_guard: what a child created by fork() inherits from corio, and why it must not use it
// (T39 in docs/reliability.md).
//
// A child gets copies of every runtime's memory, but none of its threads, and the rings are
// shared: their SQ, CQ and SQE arrays are MAP_SHARED mappings of the parent's io_uring instance,
// and the ring fds point at it. A child that went on using a runtime would write SQEs into the
// parent's queues and race the parent's worker on them. So, in the child of every fork (a
// pthread_atfork handler, installed when the first runtime is constructed):
//   - every ring alive in the process gets private anonymous memory in place of its mappings, and
//     /dev/null in place of its fd (the number stays taken, so nothing else reuses it): whatever
//     the child does with an inherited ring, the parent's instance never sees it;
//   - the epoch is bumped: a runtime created before the fork is unusable in the child. Its entry
//     points (block_on, spawn) throw, and a worker or blocking-pool thread of the parent that
//     gets control back in the child (a task that called fork() and then neither exec'd nor
//     exited) prints why and ends the child with _exit(127);
//   - a thread that was a worker of an inherited runtime may still create a runtime of its own and
//     block_on it: the nested-block_on check ignores an inherited runtime.
// A runtime created in the child works normally. exec closes the inherited ring fds (O_CLOEXEC).
#pragma once

#include <liburing.h>

#include <atomic>

namespace corio::detail::fork_guard {

/// Installs the pthread_atfork handlers (once per process; later calls do nothing).
void install();

/// Written only by the child handler, on the child's only thread; read anywhere (relaxed: a
/// thread of this process either forked, and then it is the one that wrote, or was copied
/// afterwards). Read it through epoch().
extern std::atomic<unsigned> g_epoch;

/// How many times this process's ancestry forked since it was started: a runtime compares the
/// value it saw at construction with the current one. A relaxed load of one global, inline: a
/// worker reads it after every resumption.
inline unsigned epoch() noexcept {
  return g_epoch.load(std::memory_order_relaxed);
}

/// Throws std::logic_error naming `what` if a runtime created at `created_epoch` is used in a
/// child of a fork.
void check(unsigned created_epoch, const char* what);

/// A worker or blocking-pool thread regained control in a forked child: explain on stderr and
/// _exit(127).
[[noreturn]] void child_resumed_parent_runtime(const char* where) noexcept;

/// A ring alive in this process, for the child handler; linked by ring's constructor, unlinked
/// by its destructor.
struct ring_entry {
  io_uring* ring = nullptr;
  ring_entry* prev = nullptr;
  ring_entry* next = nullptr;
};
void add_ring(ring_entry* e) noexcept;
void remove_ring(ring_entry* e) noexcept;

}  // namespace corio::detail::fork_guard
