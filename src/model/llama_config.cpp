#include <cmath>

#include "latentkv/model/llama.h"

namespace latentkv {

void LlamaConfig::validate() const {
  if (architecture != "llama") {
    LKV_THROW(StatusCode::kUnsupported, "model architecture '", architecture,
              "' is not supported (only 'llama')");
  }
  LKV_CHECK_ARG(n_layers > 0, "n_layers must be > 0, got ", n_layers);
  LKV_CHECK_ARG(d_model > 0, "d_model must be > 0, got ", d_model);
  LKV_CHECK_ARG(num_qo_heads > 0, "num_qo_heads must be > 0, got ", num_qo_heads);
  LKV_CHECK_ARG(num_kv_heads > 0, "num_kv_heads must be > 0, got ", num_kv_heads);
  LKV_CHECK_ARG(num_qo_heads % num_kv_heads == 0, "num_qo_heads ", num_qo_heads,
                " is not a multiple of num_kv_heads ", num_kv_heads);
  LKV_CHECK_ARG(head_dim > 0 && head_dim % 2 == 0, "head_dim must be even and > 0, got ", head_dim);
  LKV_CHECK_ARG(ffn_dim > 0, "ffn_dim must be > 0, got ", ffn_dim);
  LKV_CHECK_ARG(vocab_size > 0, "vocab_size must be > 0, got ", vocab_size);
  LKV_CHECK_ARG(context_length > 0, "context_length must be > 0, got ", context_length);
  LKV_CHECK_ARG(std::isfinite(rms_eps) && rms_eps > 0, "rms_eps must be > 0, got ", rms_eps);
  LKV_CHECK_ARG(std::isfinite(rope.theta) && rope.theta > 0, "rope theta must be > 0, got ",
                rope.theta);
  LKV_CHECK_ARG(std::isfinite(rope.linear_factor) && rope.linear_factor > 0,
                "rope linear_factor must be > 0, got ", rope.linear_factor);
  if (!rope.freq_factors.empty()) {
    LKV_CHECK_ARG(static_cast<int>(rope.freq_factors.size()) == head_dim / 2,
                  "rope freq_factors has ", rope.freq_factors.size(),
                  " entries, expected head_dim/2 = ", head_dim / 2);
    for (float f : rope.freq_factors) {
      LKV_CHECK_ARG(std::isfinite(f) && f > 0, "rope freq_factors must be finite and > 0, got ", f);
    }
  }
}

}  // namespace latentkv
