// Synchronization primitives for tasks (and, in their blocking forms, plain threads).
#pragma once

#include <corio/sync/barrier.hpp>
#include <corio/sync/condition_variable.hpp>
#include <corio/sync/event.hpp>
#include <corio/sync/mutex.hpp>
#include <corio/sync/semaphore.hpp>
#include <corio/sync/shared_mutex.hpp>
#include <corio/sync/wait_group.hpp>
