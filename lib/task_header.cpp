// The root-task protocol: spawn, completion, join, detach.
//
// State word (task_header::state), one writer per transition:
//   spawn            state = HANDLE
//   join publishes   fetch_or(JOIN_WAITING)  -- by the joiner's worker, after the joiner suspended
//   task finishes    fetch_or(COMPLETE)      -- by the worker where the frame hit final_suspend,
//                                               after it suspended (a deferred action)
//   handle dropped   fetch_and(~HANDLE)
//   shutdown         fetch_or(COMPLETE | DESTROYED), after destroying the frame
//   cancel message   fetch_or(CANCEL_MSG) when queued, fetch_and(~CANCEL_MSG) when processed
//
// Correctness:
//  1. The joiner is scheduled exactly once: both the finishing side and the joining side do an
//     acq_rel RMW; whichever comes second sees the other's bit and schedules the joiner (the
//     finisher if it sees JOIN_WAITING, the joiner itself if it sees COMPLETE).
//  2. The result is visible to the joiner: the finisher's RMW releases the frame's writes, and
//     the joiner acquires them (join_ready's acquire load, or its own RMW).
//  3. Header and frame are freed exactly once, by the side that removes the last of
//     {task running, HANDLE, CANCEL_MSG}: each transition computes the resulting state and frees
//     only when it is exactly COMPLETE (destroy_if_unreferenced).
//  4. Nobody touches a frame while it runs: completion is published only after the frame's
//     final_suspend has returned to the worker loop (deferred_action).
#include "task_header.hpp"

#include "cancel.hpp"
#include "context.hpp"
#include "runtime_core.hpp"
#include "worker.hpp"

#include <corio/error.hpp>

#include <fmt/format.h>

#include <atomic>
#include <limits>
#include <new>
#include <stdexcept>

namespace corio::detail {
// The fields are ordered so that the header has no padding hole (task_header.hpp); LP64 only.
static_assert(sizeof(void*) != 8 || sizeof(task_header) == 184, "task_header layout grew");

namespace {

constinit std::atomic<std::uint64_t> id_source{1};
constexpr std::uint64_t id_block = 1024;
thread_local constinit std::uint64_t id_next = 0;
thread_local constinit std::uint64_t id_end = 0;

void finish_root(deferred_action* a, worker& w) noexcept {
  auto* t = static_cast<task_header*>(a);
  t->runtime->complete_root(t, w);
}

// Cancel action of a join (cancel.cpp step 3): withdraws the waiter unless the joined task
// finished first, in which case its finisher resumes the joiner.
void cancel_join(wait_point* p, worker& w) noexcept {
  auto* waiter = static_cast<join_waiter*>(p);
  task_header* t = waiter->task;
  std::uint32_t cur = t->state.load(std::memory_order_acquire);
  do {
    if (cur & task_header::complete) return;
  } while (!t->state.compare_exchange_weak(cur, cur & ~task_header::join_waiting,
                                           std::memory_order_acq_rel, std::memory_order_acquire));
  waiter->cancelled = true;
  end_wait_owner(waiter->node.task);
  w.schedule_local(&waiter->node);
}

void join_publish(deferred_action* a, worker& w) noexcept {
  auto* waiter = static_cast<join_waiter*>(a);
  task_header* t = waiter->task;
  waiter->cancel = &cancel_join;
  if (!begin_wait(w, waiter->node.task, waiter, wait_kind::join)) {
    waiter->cancelled = true;
    w.schedule_local(&waiter->node);
    return;
  }
  t->joiner = waiter;
  // Release: publishes `joiner`. Acquire: if COMPLETE is already set, the result is visible.
  std::uint32_t prev = t->state.fetch_or(task_header::join_waiting, std::memory_order_acq_rel);
  if (prev & task_header::complete) {  // finished meanwhile: nobody else will resume us
    end_wait_owner(waiter->node.task);
    w.schedule_local(&waiter->node);
  }
}

}  // namespace

std::uint64_t next_task_id() noexcept {
  if (id_next == id_end) {
    // Relaxed: ids only need to be unique.
    id_next = id_source.fetch_add(id_block, std::memory_order_relaxed);
    id_end = id_next + id_block;
  }
  return id_next++;
}

task_header* task_header::create(runtime_core& rt, std::coroutine_handle<> frame,
                                 promise_base& promise, const result_cell_ops* ops,
                                 worker* pinned) {
  // No cell (task<void>, or the result stays in the frame): no padding up to the cell either.
  std::size_t size =
      ops != nullptr && ops->size > 0 ? task_cell_offset + ops->size : sizeof(task_header);
  void* mem;
  try {
    if (size > std::numeric_limits<std::uint32_t>::max()) throw std::bad_alloc();  // a 4 GiB result
    mem = frame_alloc(size);
  } catch (...) {
    frame.destroy();
    throw;
  }
  auto* t = new (mem) task_header;
  t->alloc_size = static_cast<std::uint32_t>(size);
  t->cell_ops = ops;  // a task<void> keeps its ops (its frame is released at completion)
  if (void* cell = t->cell()) ops->init(cell);
  t->run = &finish_root;
  t->promise = &promise;
  t->runtime = &rt;
  t->pinned = pinned;
  t->id = next_task_id();
  t->start.handle = frame;
  t->start.task = t;
  promise.root_ = t;
  return t;
}

void task_header::destroy() noexcept {
  // A cancellation processor drops its CANCEL_MSG reference while it still holds the cancel lock
  // (cancel.cpp step 3), so another thread may release the last reference in between: wait for
  // it to unlock before the memory goes. A load suffices, no locked exchange: the RMW on `state`
  // that decided to destroy read the processor's fetch_and or a later value, so the processor's
  // lock acquisition happens before this load, which therefore reads that `true` or the unlock's
  // `false` after it (nobody locks a header that has no reference left). The acquire pairs with
  // the unlock's release: everything the processor did under the lock happens before the free.
  while (cancel_lock.load(std::memory_order_acquire)) __builtin_ia32_pause();
  if (!(state.load(std::memory_order_relaxed) & destroyed) && frame()) frame().destroy();
  if (void* c = cell()) cell_ops->destroy(c);
  if (locals != nullptr) release_locals(locals);
  std::size_t size = alloc_size;
  this->~task_header();
  frame_free(this, size);
}

void task_header::release_frame() noexcept {
  exception = std::move(promise->exception_);
  if (cell_ops == nullptr) return;  // the value stays in the frame for the handle
  start.handle.destroy();
  start.handle = nullptr;
  promise = nullptr;
}

task_header* spawn_root(std::coroutine_handle<> frame, promise_base* promise,
                        const result_cell_ops* cell_ops, spawn_kind kind) {
  if (!frame) throw std::logic_error("corio::spawn: the task is empty (moved from?)");
  worker* w = current_worker();
  runtime_core* rt = w ? &w->runtime() : current_runtime();
  if (rt == nullptr) {
    frame.destroy();
    throw std::logic_error(
        "corio::spawn called outside a runtime: call it from a task or from spawn_blocking "
        "code, or use runtime::spawn");
  }
  if (rt->fork_epoch() != fork_guard::epoch()) {
    frame.destroy();
    fork_guard::check(rt->fork_epoch(), "corio::spawn");
  }
  if (kind == spawn_kind::local && w == nullptr) {
    frame.destroy();
    throw std::logic_error("corio::spawn_local must be called from a task on a worker thread");
  }
  task_header* t =
      task_header::create(*rt, frame, *promise, cell_ops, kind == spawn_kind::local ? w : nullptr);
  if (w != nullptr) share_locals(t, w->current_task());
  rt->start_root(t, w);
  return t;
}

task_header* spawn_root_on(runtime_core& rt, std::coroutine_handle<> frame, promise_base* promise,
                           const result_cell_ops* cell_ops) {
  if (!frame) throw std::logic_error("corio: the task to run is empty (moved from?)");
  if (rt.fork_epoch() != fork_guard::epoch()) {
    frame.destroy();
    fork_guard::check(rt.fork_epoch(), "corio::runtime::spawn");
  }
  worker* w = current_worker();
  task_header* t = task_header::create(rt, frame, *promise, cell_ops, nullptr);
  if (w != nullptr) share_locals(t, w->current_task());
  rt.start_root(t, w && &w->runtime() == &rt ? w : nullptr);
  return t;
}

std::coroutine_handle<> root_final(task_header* t) noexcept {
  current_worker()->defer(t);
  return std::noop_coroutine();
}

bool join_ready(const task_header* t) noexcept {
  return t->state.load(std::memory_order_acquire) & task_header::complete;
}

bool task_header::has_unobserved_exception() const noexcept {
  if (state.load(std::memory_order_relaxed) & destroyed) return false;
  if (!exception) return false;
  if (cancel_flag.load(std::memory_order_relaxed)) {
    try {
      std::rethrow_exception(exception);
    } catch (const operation_cancelled&) {
      return false;  // the expected end of a cancelled task
    } catch (...) {
    }
  }
  return true;
}

bool join_cancelled(const task_header* t) noexcept {
  return t->state.load(std::memory_order_acquire) & task_header::destroyed;
}

void join_suspend(join_waiter& waiter, task_header* t, std::coroutine_handle<> h) {
  worker* w = current_worker();
  if (w == nullptr) {
    throw std::logic_error("corio: a join_handle can only be awaited by a task on a worker");
  }
  waiter.node.handle = h;
  waiter.node.task = w->current_task();
  waiter.task = t;
  if (w->alone() && t->runtime == &w->runtime()) {
    // Publishing waits for the joiner to have suspended only because a finisher on another
    // worker could resume it earlier; a task of this one-worker runtime finishes on this thread
    // (rule 4's deferred action, after this resumption returned), so the join publishes now.
    join_publish(&waiter, *w);
    return;
  }
  waiter.run = &join_publish;
  w->defer(&waiter);
}

void release_handle(task_header* t, bool observed) noexcept {
  // Complete with no cancel message in flight: the handle is the last reference and nobody can
  // take another, so the header is freed without the RMW. Only a poke could still set a bit
  // (CANCEL_MSG), and pokes come from this handle's owner (join_handle::cancel, not concurrent
  // with this), from a child group, whose lock keeps a linked child from finishing while it
  // pokes, or from a scope the task has not left. The acquire pairs with the finisher's
  // fetch_or(COMPLETE) as the RMW's would. Otherwise the RMW decides (rule 3).
  std::uint32_t prev = t->state.load(std::memory_order_acquire);
  if ((prev & (task_header::complete | task_header::cancel_msg)) != task_header::complete) {
    prev = t->state.fetch_and(~task_header::handle, std::memory_order_acq_rel);
    if (!(prev & task_header::complete)) return;  // still running: the finisher frees it
  }
  if (!observed && t->has_unobserved_exception()) {
    t->runtime->report_unhandled(t->exception, t->id);
  }
  t->destroy_if_unreferenced(prev & ~task_header::handle);
}

const std::exception_ptr& task_exception(const task_header* t) noexcept {
  return t->exception;
}

void* task_result_cell(const task_header* t) noexcept {
  return t->cell();
}

std::uint64_t task_id(const task_header* t) noexcept {
  return t->id;
}

void cancel_task(task_header* t) {
  request_cancel(t);
}

}  // namespace corio::detail
