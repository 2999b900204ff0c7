// read_some_pooled: a stream's receives into the worker's provided buffers.
//
// Each stream that uses pooled reads has one pooled_reader, created by its first read and bound
// to that read's worker W and W's read pool for the session. Every field of a bound reader is
// W's alone (no locks, no atomics): W arms the receive, reaps its CQEs, queues the buffers they
// name, hands them to the waiting read, fires its deadline and runs its cancellation.
//
//  1. A read on W takes the oldest queued buffer, or a pending end of stream or error, without
//     suspending. Otherwise it arms a receive if none is in flight -- on a socket a multishot
//     recv with IOSQE_BUFFER_SELECT, on another fd one read with a provided buffer, and into a
//     heap buffer when the pool has none left -- registers its wait point and deadline on W and
//     waits.
//  2. A read on another worker X (the task was stolen) does not touch the reader: once the task
//     has suspended (a deferred action on X) it posts itself to W, which goes through step 1 and
//     schedules the task when a buffer is there. The task then tends to run on W again.
//  3. Each CQE on W: a buffer with bytes goes to the back of the queue, one with none straight
//     back to the ring (a CQE of a cancelled receive may carry one); a final CQE (no F_MORE)
//     ends the receive: ENOBUFS only means "re-arm when a read wants more", 0 is the end of the
//     stream, another error is kept for the read after the queued bytes. Then the waiting read,
//     if any, gets the oldest outcome and is scheduled on W.
//  4. Exactly one of {a CQE, the deadline, a cancellation} ends a wait: each runs on W and
//     clears `waiter` first. A timed-out or cancelled read leaves the receive armed: later bytes
//     wait in the queue for the next read, nothing is lost.
//  5. The stream lets go (release_pooled_reader): on W directly, from elsewhere through a posted
//     action. A receive in flight is cancelled, and the reader is freed by its final CQE; the
//     queued buffers go back to the pool.
//
// Sessions: a reader's binding lives as long as its pool (buffer_pool.hpp). When W's session
// ends, W drains its ring (every receive's final CQE is reaped) and retires the pool; a reader
// bound to a retired pool has nothing in flight and can be used, and freed, from any thread. Its
// next read delivers what is still queued, then binds the reader to the new worker and pool.
#include "buffer_pool.hpp"
#include "cancel.hpp"
#include "context.hpp"
#include "worker.hpp"

#include <corio/detail/fd_owner.hpp>
#include <corio/detail/frame_alloc.hpp>
#include <corio/detail/pooled_read.hpp>

#include <fmt/format.h>

#include <cerrno>
#include <new>
#include <stdexcept>
#include <utility>

namespace corio::detail {

class pooled_reader : public io_op {
 public:
  static constexpr std::uint32_t no_bid = 0xffffffffu;
  static constexpr int no_final = 1;

  buffer_pool* pool = nullptr;  // the binding (null before the first read)
  worker* owner = nullptr;      // the pool's worker
  std::uint32_t head = no_bid;  // queue of received buffers, oldest first (pool->link)
  std::uint32_t tail = no_bid;
  pooled_buffer heap_ready;       // bytes of a heap read that no read has taken yet
  std::byte* heap_buf = nullptr;  // the buffer of the heap read in flight
  int final_res = no_final;       // after the queue: 0 end of stream, -errno an error
  pooled_wait* waiter = nullptr;
  struct release_action : deferred_action {
    pooled_reader* reader = nullptr;
  } release_msg;          // step 5 from another thread
  bool armed = false;     // a receive or read is in flight (its final CQE not reaped)
  bool heap_op = false;   // ... into heap_buf
  bool released = false;  // the stream let go
};

namespace {

void free_reader(pooled_reader* r) noexcept {
  while (r->head != pooled_reader::no_bid) {
    auto bid = static_cast<std::uint16_t>(r->head);
    r->head = r->pool->link(bid);
    r->pool->give_back(bid);
  }
  r->heap_ready.reset();
  if (r->pool != nullptr) r->pool->unbind_reader();
  r->~pooled_reader();
  frame_free(r, sizeof(pooled_reader));
}

// The oldest outcome into `w`; false if there is none.
bool take_ready(pooled_reader* r, pooled_wait& w) noexcept {
  if (r->head != pooled_reader::no_bid) {
    auto bid = static_cast<std::uint16_t>(r->head);
    r->head = r->pool->link(bid);
    if (r->head == pooled_reader::no_bid) r->tail = pooled_reader::no_bid;
    w.result = pooled_buffer::adopt(r->pool, bid, r->pool->address(bid), r->pool->length(bid));
    return true;
  }
  if (!r->heap_ready.empty()) {
    w.result = std::move(r->heap_ready);
    return true;
  }
  if (r->final_res != pooled_reader::no_final) {
    w.err = -std::exchange(r->final_res, pooled_reader::no_final);
    return true;
  }
  return false;
}

void push_buffer(pooled_reader* r, std::uint16_t bid, std::int32_t len) noexcept {
  buffer_pool& p = *r->pool;
  p.length(bid) = static_cast<std::uint32_t>(len);
  p.link(bid) = pooled_reader::no_bid;
  if (r->tail == pooled_reader::no_bid) {
    r->head = bid;
  } else {
    p.link(static_cast<std::uint16_t>(r->tail)) = bid;
  }
  r->tail = bid;
}

void on_reader_cqe(io_op* op, std::int32_t res, std::uint32_t flags, worker& w) noexcept;

// Step 1's receive, on the owner `w`. Throws (no SQE, no memory) with nothing armed.
void arm(pooled_reader* r, worker& w, fd_owner& f, bool recv) {
  buffer_pool& p = *r->pool;
  // The worker first, then the fd: a close racing with this sees the worker and cancels what
  // it submits (fd_owner.hpp).
  int fd = f.note_worker(w.index());
  if (fd < 0) {
    r->final_res = -EBADF;
    return;
  }
  p.drain_returns();
  std::byte* heap = nullptr;
  if (p.available() == 0) {
    heap = static_cast<std::byte*>(::operator new(p.buffer_size()));
    w.note_pool_dry_read();
  }
  io_uring_sqe* sqe;
  try {
    sqe = w.get_sqe();
  } catch (...) {
    ::operator delete(heap);
    throw;
  }
  auto size = static_cast<unsigned>(p.buffer_size());
  if (heap == nullptr) {
    if (recv) {
      io_uring_prep_recv_multishot(sqe, fd, nullptr, 0, 0);
    } else {
      io_uring_prep_read(sqe, fd, nullptr, size, static_cast<std::uint64_t>(-1));
    }
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = static_cast<std::uint16_t>(p.group());
  } else if (recv) {
    io_uring_prep_recv(sqe, fd, heap, size, 0);
  } else {
    io_uring_prep_read(sqe, fd, heap, size, static_cast<std::uint64_t>(-1));
  }
  r->heap_buf = heap;
  r->heap_op = heap != nullptr;
  r->armed = true;
  r->on_cqe = &on_reader_cqe;
  io_uring_sqe_set_data(sqe, static_cast<io_op*>(r));
  w.op_submitted(r);
}

// A wait ends on the owner `w` (steps 3 and 4): the caller has filled in the outcome.
void wake(pooled_reader* r, pooled_wait& wt, worker& w) noexcept {
  r->waiter = nullptr;
  if (wt.deadline.heap_index != timer_node::not_queued) w.disarm_timer(&wt.deadline);
  end_wait_owner(wt.node.task);
  w.schedule_local(&wt.node);
}

void on_reader_cqe(io_op* op, std::int32_t res, std::uint32_t flags, worker& w) noexcept {
  auto* r = static_cast<pooled_reader*>(op);
  bool more = (flags & IORING_CQE_F_MORE) != 0;
  if (!more) r->armed = false;
  if (r->heap_op) {  // single-shot into heap_buf: always final
    std::byte* b = std::exchange(r->heap_buf, nullptr);
    if (res > 0) {
      r->heap_ready = pooled_buffer::adopt(nullptr, 0, b, static_cast<std::size_t>(res));
    } else {
      ::operator delete(b);
      r->final_res = res;
    }
  } else {
    if (flags & IORING_CQE_F_BUFFER) {
      auto bid = static_cast<std::uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
      r->pool->note_taken();
      if (res > 0) {
        push_buffer(r, bid, res);
      } else {
        r->pool->recycle(bid);
      }
    }
    // ENOBUFS: the pool ran dry; the next read re-arms (into the heap if still dry).
    if (!more && res <= 0 && res != -ENOBUFS) r->final_res = res;
  }
  // The session's end cancelled the receive, not a close: the stream may be read again later.
  if (w.draining() && r->final_res == -ECANCELED) r->final_res = pooled_reader::no_final;
  if (r->released) {
    if (!r->armed) free_reader(r);
    return;
  }
  if (r->waiter == nullptr || w.draining()) return;
  pooled_wait& wt = *r->waiter;
  if (!take_ready(r, wt)) {
    if (r->armed) return;  // more to come
    try {
      arm(r, w, *wt.owner, wt.recv);  // ENOBUFS, or a one-buffer read with nothing in it
      if (!take_ready(r, wt)) return;
    } catch (...) {
      wt.err = ENOMEM;
    }
  }
  wake(r, wt, w);
}

void deadline_fired(timer_node* t, worker& w) noexcept {
  auto& wt = *static_cast<pooled_wait*>(t->context);
  if (wt.reader->waiter != &wt) return;
  wt.timed_out = true;
  wake(wt.reader, wt, w);
}
constexpr timer_hooks deadline_hooks{&deadline_fired, nullptr};

void cancel_wait(wait_point* p, worker& w) noexcept {
  auto& wt = *static_cast<pooled_wait*>(p);
  if (wt.reader->waiter != &wt) return;
  wt.cancelled = true;
  wake(wt.reader, wt, w);
}

// Step 1 on the owner `w`. Returns true when `wt` waits (registered), false when its outcome is
// in it already. Throws only what arm throws.
bool start_on_owner(pooled_reader* r, pooled_wait& wt, worker& w) {
  if (take_ready(r, wt)) return false;
  if (!r->armed) {
    arm(r, w, *wt.owner, wt.recv);
    if (take_ready(r, wt)) return false;
  }
  wt.cancel = &cancel_wait;
  if (!begin_wait(w, wt.node.task, &wt, wait_kind::pooled_read)) {
    wt.cancelled = true;
    return false;
  }
  op_deadline deadline = operation_deadline(wt.deadline_ns, wt.timeout_ns);
  if (deadline.at != 0) {
    if (deadline.passed) {
      end_wait_owner(wt.node.task);
      wt.timed_out = true;
      return false;
    }
    wt.deadline.deadline_ns = deadline.at;
    wt.deadline.hooks = &deadline_hooks;
    wt.deadline.context = &wt;
    w.arm_timer(&wt.deadline);
  }
  r->waiter = &wt;
  return true;
}

// Step 2, on the owner: the migrated read arrives.
void arrive_on_owner(deferred_action* a, worker& w) noexcept {
  pooled_wait& wt = *static_cast<pooled_hop*>(a)->wait;
  if (w.draining()) return;  // the session ends; the frame is destroyed without resuming
  bool waits;
  try {
    waits = start_on_owner(wt.reader, wt, w);
  } catch (...) {
    wt.err = ENOMEM;
    waits = false;
  }
  if (!waits) w.schedule_local(&wt.node);
}

// Step 2, on the reading worker once the task has suspended there.
void hop_to_owner(deferred_action* a, worker&) noexcept {
  pooled_wait& wt = *static_cast<pooled_hop*>(a)->wait;
  wt.hop.run = &arrive_on_owner;
  wt.reader->owner->post(&wt.hop);
}

void release_on_owner(pooled_reader* r, worker& w) noexcept {
  r->released = true;
  if (!r->armed) {
    free_reader(r);
  } else if (!w.draining()) {
    w.cancel_op(r);  // its final CQE frees the reader
  }
}

void release_message(deferred_action* a, worker& w) noexcept {
  pooled_reader* r = static_cast<pooled_reader::release_action*>(a)->reader;
  if (r->pool->retired()) {
    free_reader(r);
  } else {
    release_on_owner(r, w);
  }
}

}  // namespace

bool pooled_read_start(pooled_wait& wt, std::coroutine_handle<> h) {
  worker* x = current_worker();
  if (x == nullptr) throw std::logic_error("corio: read_some_pooled called outside a worker");
  if (*wt.busy) {
    throw std::logic_error(
        "corio: read_some_pooled while another pooled read of the same "
        "stream is in progress");
  }
  wt.fd = wt.owner->get();
  pooled_reader*& r = *wt.slot;
  if (r == nullptr) r = new (frame_alloc(sizeof(pooled_reader))) pooled_reader;
  *wt.busy = true;
  wt.reader = r;
  wt.node.handle = h;
  wt.node.task = x->current_task();
  if (r->pool == nullptr || r->pool->retired()) {
    // Unbound, or bound to a session that ended (nothing in flight): what is left queued first.
    if (r->pool != nullptr) {
      if (take_ready(r, wt)) return false;
      r->pool->unbind_reader();
      r->pool = nullptr;
    }
    r->waiter = nullptr;
    r->pool = &x->read_pool();
    r->pool->bind_reader();
    r->owner = x;
  }
  if (r->owner == x) return start_on_owner(r, wt, *x);
  wt.hop.run = &hop_to_owner;
  wt.hop.wait = &wt;
  x->defer(&wt.hop);
  return true;
}

std::int64_t current_read_pool_out() noexcept {
  worker* w = current_worker();
  buffer_pool* p = w != nullptr ? w->read_pool_if_any() : nullptr;
  if (p == nullptr) return -1;
  p->drain_returns();
  return static_cast<std::int64_t>(p->count()) - p->available();
}

void throw_mixed_reads(const char* what) {
  throw std::logic_error(
      fmt::format("corio: {} on a stream that read_some_pooled reads (its "
                  "receive goes on into the read pool; use read_some_pooled)",
                  what));
}

std::error_code pooled_read_error(const pooled_wait& w) noexcept {
  if (pooled_read_ok(w)) return {};
  if (w.cancelled) return std::make_error_code(std::errc::operation_canceled);
  if (w.timed_out) return std::make_error_code(std::errc::timed_out);
  if (w.err == ECANCELED) return make_error_code(errc::stream_closed);  // a close cancelled it
  return errno_code(w.err);
}

void throw_pooled_read_error(const pooled_wait& w) {
  throw_error(pooled_read_error(w), fmt::format("corio: read_some_pooled on fd {}", w.fd));
}

void release_pooled_reader(pooled_reader* r) noexcept {
  if (r->pool == nullptr || r->pool->retired()) {
    free_reader(r);
    return;
  }
  worker* x = current_worker();
  if (x == r->owner && !x->draining()) {
    release_on_owner(r, *x);
    return;
  }
  r->release_msg.run = &release_message;
  r->release_msg.reader = r;
  try {
    r->owner->post(&r->release_msg);
  } catch (...) {
    std::terminate();  // post only allocates nothing; a failing mutex leaves nothing to do
  }
}

}  // namespace corio::detail
