// Networking: addresses, TCP, UDP and Unix sockets.
#pragma once

#include <corio/net/address.hpp>
#include <corio/net/incoming.hpp>
#include <corio/net/tcp.hpp>
#include <corio/net/udp.hpp>
#include <corio/net/unix.hpp>
