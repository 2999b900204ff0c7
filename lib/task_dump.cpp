// runtime::tasks(): a consistent snapshot of every live task, taken by pausing the workers.
//
// A task's state -- its frames' await sites and child links, its wait point and what that
// points into -- is written by whichever worker runs or completes it, without locks. To read it
// from another thread the snapshot stops the world:
//
//  1. The caller posts a stop action to every worker of the runtime except its own (if it runs
//     on one: that worker is busy with the caller's task and touches nothing else meanwhile).
//  2. A worker runs posted actions between two resumptions (worker::drain_inbox). The action
//     "arrives" under the shared mutex and blocks until released. Everything the worker wrote
//     before happens-before the caller's reads (the mutex), and it writes nothing until released.
//  3. Once every worker arrived, the caller walks the registry. Threads that are not workers
//     write to tasks only in three ways, each safe to race with: spawning (registry shard mutex),
//     ending a wait from outside (a blocking job, a foreign channel sender: under the task's
//     cancel lock, read here with registered_wait), and writing a waiter's result slot (never
//     read here). No frame can resume or be destroyed while every worker is paused.
//  4. The caller releases the workers.
//
// Shutdown: once the main task finished, workers leave their loops and are never paused again:
// an action that runs while its worker drains (or from close(), after the loop) arrives "refused"
// without blocking. The caller gives up as soon as the runtime stops or a worker refused, and
// releases those that arrived, so nobody waits for a worker that is gone. The shared state is
// reference-counted: an action that runs late (from close(), after the caller returned) still
// finds it.
#include "cancel.hpp"
#include "context.hpp"
#include "runtime_core.hpp"
#include "task_header.hpp"
#include "worker.hpp"

#include <corio/blocking.hpp>
#include <corio/detail/diagnostics.hpp>
#include <corio/detail/io_awaiter.hpp>
#include <corio/detail/pooled_read.hpp>
#include <corio/detail/wait_list.hpp>
#include <corio/inspect.hpp>
#include <corio/net/address.hpp>
#include <corio/net/incoming.hpp>
#include <corio/runtime.hpp>
#include <corio/select.hpp>
#include <corio/time.hpp>

#include <fmt/format.h>

#include <sys/socket.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <ostream>
#include <stdexcept>

namespace corio {
namespace detail {

namespace {

struct world_stop;

struct stop_action : deferred_action {
  std::shared_ptr<world_stop> shared;  // moved out when the action runs
};

struct world_stop {
  std::mutex m;
  std::condition_variable cv;
  std::size_t arrived = 0;
  bool refused = false;   // a worker was draining: the runtime is shutting down
  bool released = false;  // the caller is done reading
  std::vector<stop_action> actions;
};

void run_stop(deferred_action* a, worker& w) noexcept {
  // Declared first, destroyed last: the state (this action included) may go with it.
  std::shared_ptr<world_stop> keep = std::move(static_cast<stop_action*>(a)->shared);
  world_stop& ws = *keep;
  std::unique_lock lock(ws.m);
  bool pause = !w.draining() && !w.runtime().stop_requested();
  if (!pause) ws.refused = true;
  ++ws.arrived;
  ws.cv.notify_all();
  if (pause) ws.cv.wait(lock, [&] { return ws.released; });
}

// " (peer ADDR)" for a socket, asked for now: no operation pays for keeping it. The fd stays
// open while its op is pending, unless a thread outside the runtime closes it meanwhile (then
// the number may name another socket: a wrong peer in a diagnostic, nothing worse).
void append_peer(int fd, std::string& d) {
  if (fd < 0) return;
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return;
  if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) {
    auto peer = net::socket_address::from_native(reinterpret_cast<sockaddr*>(&ss), len);
    d += fmt::format(" (peer {})", peer);
  } else if (ss.ss_family == AF_UNIX) {
    d += " (unix socket)";
  }
}

std::string describe_wait(const wait_point* p, const std::int64_t now, task_info& out) {
  switch (p->kind) {
    case wait_kind::io: {
      const auto& s = *static_cast<const io_state*>(p);
      const io_args& a = s.args;
      out.fd = a.fd;
      std::string d = a.kind == io_kind::openat
                          ? fmt::format("{} {}", a.what, static_cast<const char*>(a.buf))
                          : fmt::format("{} on fd {}", a.what, a.fd);
      if (a.describe != nullptr) {
        a.describe(a.describe_ctx, d);
      } else {
        append_peer(a.fd, d);
      }
      if (a.exact) d += fmt::format(", {} of {} bytes done", a.done, a.len);
      if (s.deadline.heap_index != timer_node::not_queued) {
        d += fmt::format(", times out in {} ms", (s.deadline.deadline_ns - now) / 1'000'000);
      }
      return d;
    }
    case wait_kind::nop:
      return "ring nop";
    case wait_kind::ring_timeout:
      return "ring timeout";
    case wait_kind::sleep: {
      const auto& t = *static_cast<const timer_node*>(p);
      return fmt::format("sleep (due in {} ms)",
                         std::max<std::int64_t>(0, t.deadline_ns - now) / 1'000'000);
    }
    case wait_kind::join: {
      const auto& j = *static_cast<const join_waiter*>(p);
      return fmt::format("join task {}", j.task->id);
    }
    case wait_kind::blocking:
      return "spawn_blocking job";
    case wait_kind::sync:
      return static_cast<const simple_wait*>(p)->what;
    case wait_kind::select:
      return fmt::format("select over {} branches",
                         static_cast<const select_state*>(p)->native_count);
    case wait_kind::accept: {
      const auto& w = *static_cast<const net::detail::incoming_waiter*>(p);
      out.fd = net::detail::incoming_listener_fd(w.state);
      return fmt::format("accept on fd {}", out.fd);
    }
    case wait_kind::pooled_read: {
      const auto& w = *static_cast<const pooled_wait*>(p);
      out.fd = w.fd;
      std::string d = fmt::format("read_some_pooled on fd {}", w.fd);
      append_peer(w.fd, d);
      if (w.deadline.heap_index != timer_node::not_queued) {
        d += fmt::format(", times out in {} ms", (w.deadline.deadline_ns - now) / 1'000'000);
      }
      return d;
    }
    case wait_kind::none:
      break;
  }
  return "wait";
}

task_info inspect(task_header* t, const task_header* running, std::int64_t now) {
  task_info info;
  info.id = t->id;
  if (t->name) info.name = t->name.get();
  // The frames, root first; the caller's own task is read by itself.
  std::vector<task_frame> frames;
  for (const promise_base* p = t->promise; p != nullptr; p = p->child_) {
    if (p->site_line_ == 0) continue;  // not started (a child is always started)
    frames.push_back({p->site_function_, p->site_file_, p->site_line_});
  }
  if (info.name.empty() && !frames.empty()) info.name = frames.front().function;
  std::reverse(frames.begin(), frames.end());
  info.backtrace = std::move(frames);

  if (t == running) {
    info.state = task_state::running;
    if (worker* w = current_worker()) info.worker = static_cast<int>(w->index());
    return info;
  }
  wait_snapshot ws = registered_wait(t);
  if (ws.point != nullptr) {
    info.state = task_state::waiting;
    info.worker = static_cast<int>(ws.owner->index());
    info.waited = std::chrono::nanoseconds(std::max<std::int64_t>(0, now - ws.since_ns));
    info.wait = describe_wait(ws.point, now, info);
  } else if (t->promise == nullptr || t->promise->site_line_ == 0) {
    info.state = task_state::not_started;
  } else {
    info.state = task_state::runnable;
  }
  return info;
}

}  // namespace

std::vector<task_info> runtime_core::inspect_tasks() {
  worker* self = current_worker();
  if (self != nullptr && &self->runtime() != this) self = nullptr;  // another runtime's worker
  std::unique_lock<std::mutex> one_at_a_time(inspect_mutex_, std::defer_lock);
  if (self != nullptr) {
    // Waiting here could deadlock: the snapshot in progress waits for this worker to pause.
    if (!one_at_a_time.try_lock()) {
      throw std::runtime_error(
          "corio: runtime::tasks() from a task while another snapshot of the runtime is in "
          "progress");
    }
  } else {
    one_at_a_time.lock();
  }

  std::vector<task_info> out;
  if (!in_session_.load(std::memory_order_acquire)) {
    // No worker runs: only tasks spawned by runtime::spawn wait for the next block_on, not
    // started. Their ids are all that may be read without racing a session starting meanwhile.
    for (task_header* t : registry_.snapshot()) {
      task_info info;
      info.id = t->id;
      info.state = task_state::not_started;
      out.push_back(std::move(info));
    }
    std::reverse(out.begin(), out.end());
    return out;
  }

  auto ws = std::make_shared<world_stop>();
  ws->actions.resize(workers_.size());
  std::size_t expected = 0;
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    if (workers_[i].get() == self) continue;
    ws->actions[i].run = &run_stop;
    ws->actions[i].shared = ws;
    ++expected;
  }
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    if (workers_[i].get() != self) workers_[i]->post(&ws->actions[i]);
  }
  std::unique_lock lock(ws->m);
  // The runtime stopping is not signalled on the condition variable: look every millisecond.
  // A caller on a worker blocks that worker's thread here, and the wake-ups it sent to parked
  // peers may be MSG_RING SQEs in its own ring that a failed submit left queued (EAGAIN, EBUSY):
  // only this thread can submit them, so it does, each time round.
  while (ws->arrived < expected && !ws->refused && !stop_requested()) {
    if (self != nullptr) self->flush();
    ws->cv.wait_for(lock, std::chrono::milliseconds(1));
  }
  if (ws->arrived == expected && !ws->refused) {
    std::int64_t now = steady_now_ns();
    const task_header* running = self != nullptr ? self->current_task() : nullptr;
    for (task_header* t : registry_.snapshot()) out.push_back(inspect(t, running, now));
    std::reverse(out.begin(), out.end());  // the snapshot is newest first
  }
  ws->released = true;
  ws->cv.notify_all();
  return out;
}

}  // namespace detail

std::vector<task_info> runtime::tasks() const {
  return core_->inspect_tasks();
}

std::string runtime::dump_tasks() const {
  std::vector<task_info> all = core_->inspect_tasks();
  std::string out = fmt::format("corio: {} live tasks; {}\n", all.size(), to_string(stats()));
  for (const task_info& t : all) out += to_string(t);
  return out;
}

namespace {
detail::runtime_core& calling_runtime(const char* what) {
  detail::worker* w = detail::current_worker();
  if (w == nullptr) {
    throw std::logic_error(
        fmt::format("corio: {} must be called from a task on a runtime worker", what));
  }
  return w->runtime();
}
}  // namespace

std::vector<task_info> current_tasks() {
  return calling_runtime("current_tasks()").inspect_tasks();
}

std::string dump_current_tasks() {
  detail::runtime_core& rt = calling_runtime("dump_current_tasks()");
  std::vector<task_info> all = rt.inspect_tasks();
  std::string out = fmt::format("corio: {} live tasks; {}\n", all.size(), to_string(rt.stats()));
  for (const task_info& t : all) out += to_string(t);
  return out;
}

void set_task_name(std::string_view name) {
  detail::task_header* t = detail::current_task();
  if (t == nullptr) {
    throw std::logic_error("corio::set_task_name must be called from a task on a runtime worker");
  }
  auto copy = std::make_unique<char[]>(name.size() + 1);
  std::memcpy(copy.get(), name.data(), name.size());
  copy[name.size()] = '\0';
  t->name = std::move(copy);
}

std::string_view to_string(task_state s) noexcept {
  switch (s) {
    case task_state::not_started:
      return "not_started";
    case task_state::runnable:
      return "runnable";
    case task_state::running:
      return "running";
    case task_state::waiting:
      return "waiting";
  }
  return "unknown";
}

std::string to_string(const task_info& t) {
  std::string out = fmt::format("task {} \"{}\" {}", t.id, t.name, to_string(t.state));
  if (t.state == task_state::waiting) {
    out += fmt::format(" {:.3f} s on worker {}: {}",
                       std::chrono::duration<double>(t.waited).count(), t.worker, t.wait);
  } else if (t.state == task_state::running) {
    out += fmt::format(" on worker {}", t.worker);
  }
  out += '\n';
  for (std::size_t i = 0; i < t.backtrace.size(); ++i) {
    const task_frame& f = t.backtrace[i];
    out += fmt::format("    #{} {} at {}:{}\n", i, f.function, f.file, f.line);
  }
  return out;
}

std::ostream& operator<<(std::ostream& os, task_state s) {
  return os << to_string(s);
}

std::ostream& operator<<(std::ostream& os, const task_info& t) {
  return os << to_string(t);
}

}  // namespace corio
