// Library version and build configuration, for CLIs and bug reports.
#pragma once

#include <string>

namespace latentkv {

/// "0.1.0".
const char* version();
/// One line describing the build: version, compiler, whether CUDA kernels are in, OpenMP threads.
std::string build_info();

}  // namespace latentkv
