// doctest's main for the model tests. They link neither libcorio nor the shared test main: the
// code under test is header-only (lib/run_queue.hpp) or modelled in the test, so they build
// without the rest of the runtime.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
