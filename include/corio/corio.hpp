// The whole public API of corio.
#pragma once

#include <corio/blocking.hpp>
#include <corio/buffer.hpp>
#include <corio/channel.hpp>
#include <corio/completion_queue.hpp>
#include <corio/error.hpp>
#include <corio/fd_stream.hpp>
#include <corio/features.hpp>
#include <corio/file.hpp>
#include <corio/inspect.hpp>
#include <corio/join_handle.hpp>
#include <corio/net.hpp>
#include <corio/pooled_buffer.hpp>
#include <corio/runtime.hpp>
#include <corio/scope.hpp>
#include <corio/select.hpp>
#include <corio/spawn.hpp>
#include <corio/stats.hpp>
#include <corio/sync.hpp>
#include <corio/task.hpp>
#include <corio/task_local.hpp>
#include <corio/time.hpp>
#include <corio/timeout.hpp>
#include <corio/when_all.hpp>
#include <corio/when_any.hpp>
#include <corio/yield.hpp>
