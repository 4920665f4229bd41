// OpenMP spin-wait limit for the CLIs.
//
// libgomp's default lets idle workers spin for ~300000 iterations at every barrier. On a machine
// whose cores are busy with other work (shared servers, CI running tests in parallel) a spinning
// worker burns the time slice its sibling needs, and every parallel region then waits for a
// descheduled thread: with 2 threads on 2 busy cores the forward pass ran 14-40x slower than
// with one thread. A short spin (GOMP_SPINCOUNT=3000, then sleep) keeps idle-machine speed
// (2-thread prefill 1.9x, decode 2.0x one thread; OMP_WAIT_POLICY=passive loses ~40 % of the
// decode speed there) and stays robust when the cores are shared (bench/llama_forward_bench).
// libgomp reads these variables once, before main(), so a program can only choose them by
// setting them and re-executing itself.
#pragma once

#include <unistd.h>

#include <cstdlib>

namespace latentkv::cli {

/// Re-executes the program with GOMP_SPINCOUNT=3000 unless the user set OMP_WAIT_POLICY or
/// GOMP_SPINCOUNT. Call first thing in main(). Returns (continuing with the defaults) if
/// re-execution fails.
inline void limit_openmp_spinning(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr || std::getenv("GOMP_SPINCOUNT") != nullptr) return;
  if (setenv("GOMP_SPINCOUNT", "3000", 1) != 0) return;
  execv("/proc/self/exe", argv);
}

}  // namespace latentkv::cli
