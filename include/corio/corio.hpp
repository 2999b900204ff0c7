// The whole public API of corio.
#pragma once

#include <corio/blocking.hpp>
#include <corio/buffer.hpp>
#include <corio/channel.hpp>
#include <corio/error.hpp>
#include <corio/fd_stream.hpp>
#include <corio/file.hpp>
#include <corio/join_handle.hpp>
#include <corio/net.hpp>
#include <corio/runtime.hpp>
#include <corio/select.hpp>
#include <corio/spawn.hpp>
#include <corio/stats.hpp>
#include <corio/sync.hpp>
#include <corio/task.hpp>
#include <corio/time.hpp>
#include <corio/timeout.hpp>
#include <corio/yield.hpp>
