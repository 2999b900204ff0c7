#include <corio/stats.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <iterator>

namespace corio {

worker_stats& worker_stats::operator+=(const worker_stats& o) noexcept {
  tasks_polled += o.tasks_polled;
  steals += o.steals;
  tasks_stolen += o.tasks_stolen;
  global_pops += o.global_pops;
  overflows += o.overflows;
  sqes_submitted += o.sqes_submitted;
  cqes_reaped += o.cqes_reaped;
  enter_calls += o.enter_calls;
  parks += o.parks;
  wakeups_sent += o.wakeups_sent;
  timers_fired += o.timers_fired;
  accept_pauses += o.accept_pauses;
  pool_dry_reads += o.pool_dry_reads;
  pool_buffers_out += o.pool_buffers_out;
  queue_depth += o.queue_depth;
  ops_in_flight += o.ops_in_flight;
  timers_armed += o.timers_armed;
  if (o.poll_age_ns > poll_age_ns) {
    poll_age_ns = o.poll_age_ns;
    running_task = o.running_task;
  }
  longest_poll_gap_ns = std::max(longest_poll_gap_ns, o.longest_poll_gap_ns);
  return *this;
}

worker_stats runtime_stats::total() const noexcept {
  worker_stats t;
  for (const auto& w : workers) t += w;
  return t;
}

std::string to_string(const runtime_stats& s) {
  worker_stats t = s.total();
  std::string out = fmt::format(
      "workers={} spawned={} live={} polled={} steals={} stolen={} global_pops={} overflows={} "
      "sqes={} cqes={} enters={} parks={} wakeups={} timers={} accept_pauses={} pool_dry_reads={} "
      "pool_buffers_out={} global_depth={} in_flight={} timers_armed={} longest_poll_gap_ns={} "
      "blocking_threads={} blocking_jobs={} depths=[",
      s.workers.size(), s.tasks_spawned, s.tasks_live, t.tasks_polled, t.steals, t.tasks_stolen,
      t.global_pops, t.overflows, t.sqes_submitted, t.cqes_reaped, t.enter_calls, t.parks,
      t.wakeups_sent, t.timers_fired, t.accept_pauses, t.pool_dry_reads, t.pool_buffers_out,
      s.global_queue_depth, t.ops_in_flight, t.timers_armed, t.longest_poll_gap_ns,
      s.blocking_threads, s.blocking_jobs);
  for (std::size_t i = 0; i < s.workers.size(); ++i) {
    fmt::format_to(std::back_inserter(out), "{}{}", i ? " " : "", s.workers[i].queue_depth);
  }
  out += ']';
  return out;
}

std::string to_string(const worker_stats& s) {
  return fmt::format(
      "polled={} steals={} stolen={} global_pops={} overflows={} sqes={} cqes={} enters={} "
      "parks={} wakeups={} timers={} accept_pauses={} pool_dry_reads={} pool_buffers_out={} "
      "depth={} in_flight={} timers_armed={} longest_poll_gap_ns={} running_task={} "
      "poll_age_ns={}",
      s.tasks_polled, s.steals, s.tasks_stolen, s.global_pops, s.overflows, s.sqes_submitted,
      s.cqes_reaped, s.enter_calls, s.parks, s.wakeups_sent, s.timers_fired, s.accept_pauses,
      s.pool_dry_reads, s.pool_buffers_out, s.queue_depth, s.ops_in_flight, s.timers_armed,
      s.longest_poll_gap_ns, s.running_task, s.poll_age_ns);
}

std::ostream& operator<<(std::ostream& os, const worker_stats& s) {
  return os << to_string(s);
}

std::ostream& operator<<(std::ostream& os, const runtime_stats& s) {
  return os << to_string(s);
}

}  // namespace corio
