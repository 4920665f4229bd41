// Instantiation and launch of the warpgroup (wgmma) form of the folded 4-bit latent decode kernel.
#include <atomic>
#include <mutex>

#include "attention/latent_decode_config.h"
#include "cuda/latent_decode_wgmma.h"
#include "cuda/launch_dependent.h"
#include "latent_decode_wgmma.cuh"

namespace latentkv::detail {
namespace {

template <int KS>
cudaError_t launch_ks(const kernels::LatentDecodeKernelParams& kp,
                      const kernels::LatentDecodeKernelParams& kpw,
                      const kernels::LatentWgGrid& grid, int smem, cudaStream_t stream) {
  static std::once_flag once;
  static cudaError_t attr = cudaSuccess;
  // Raised once per instantiation (not a stream operation, so never inside a graph capture after
  // the first call).
  std::call_once(once, [] {
    attr = cudaFuncSetAttribute(kernels::latent_decode_wgmma_kernel<KS>,
                                cudaFuncAttributeMaxDynamicSharedMemorySize, 227 * 1024);
  });
  if (attr != cudaSuccess) return attr;
  const int64_t ctas =
      int64_t{grid.batch} * (int64_t{grid.main_x} * grid.main_y + int64_t{grid.win_x} * grid.win_y);
  if (ctas > 0x7fffffff) return cudaErrorInvalidConfiguration;
  // A programmatic dependent of the query fold (the kernel waits before it reads the fold's
  // output).
  return launch_dependent(kernels::latent_decode_wgmma_kernel<KS>,
                          dim3(static_cast<unsigned>(ctas)), dim3(kernels::kLatentWgThreads), smem,
                          stream, kp, kpw, grid);
}

}  // namespace

bool latent_wgmma_available() {
#if defined(LATENTKV_HAS_SM90A)
  // Asked on every decode call (per layer and token): the answer per device is cached
  // (0 unknown, 1 no, 2 yes) so that only the first call queries the attributes.
  constexpr int kMaxDevices = 64;
  static std::atomic<int> known[kMaxDevices] = {};
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) return false;
  if (dev < kMaxDevices && known[dev].load(std::memory_order_relaxed) != 0)
    return known[dev].load(std::memory_order_relaxed) == 2;
  int major = 0, minor = 0;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) != cudaSuccess)
    return false;
  const bool ok = major == 9 && minor == 0;
  if (dev < kMaxDevices) known[dev].store(ok ? 2 : 1, std::memory_order_relaxed);
  return ok;
#else
  return false;
#endif
}

bool latent_uses_wgmma(const LatentDecodeParams& p) {
  return latent_wg_shape(p) && latent_wgmma_available();
}

cudaError_t launch_latent_decode_wgmma(const kernels::LatentDecodeKernelParams& kp,
                                       const kernels::LatentDecodeKernelParams& kpw,
                                       const kernels::LatentWgGrid& grid, int smem,
                                       cudaStream_t stream) {
  switch (kernels::latent_key_step_bucket(kp.ksteps)) {
    case 2:
      return launch_ks<2>(kp, kpw, grid, smem, stream);
    case 4:
      return launch_ks<4>(kp, kpw, grid, smem, stream);
    case 8:
      return launch_ks<8>(kp, kpw, grid, smem, stream);
    default:
      return cudaErrorInvalidValue;
  }
}

}  // namespace latentkv::detail
