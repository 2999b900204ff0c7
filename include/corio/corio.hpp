// The whole public API of corio.
#pragma once

#include <corio/blocking.hpp>
#include <corio/error.hpp>
#include <corio/join_handle.hpp>
#include <corio/runtime.hpp>
#include <corio/spawn.hpp>
#include <corio/stats.hpp>
#include <corio/task.hpp>
#include <corio/time.hpp>
#include <corio/timeout.hpp>
#include <corio/yield.hpp>
