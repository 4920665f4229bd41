#include "latentkv/version.h"

#include <omp.h>

#include "latentkv/status.h"

namespace latentkv {

const char* version() { return "0.1.0"; }

std::string build_info() {
#ifdef LATENTKV_WITH_CUDA
  const char* cuda = "cuda=on";
#else
  const char* cuda = "cuda=off";
#endif
  return str_cat("latentkv ", version(), " (", __VERSION__, ", ", cuda,
                 ", omp_threads=", omp_get_max_threads(), ")");
}

}  // namespace latentkv
