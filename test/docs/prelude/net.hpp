// Prelude "net" for documentation snippets: prelude "corio" and `using namespace corio::net`.
#pragma once

#include "prelude/corio.hpp"

using namespace corio::net;
