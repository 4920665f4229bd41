// The KV-cache and device options shared by latentkv-ppl and latentkv-generate: the dense cache
// (fp32/fp16), the latent cache of a compressed model (--compressed C.lkv) and the KIVI-style
// quantization-only baseline (--kv-cache kivi), with the bytes per token each one holds; the model
// runs on the CPU reference or on the GPU engine (--device).
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "common/args.h"
#include "latentkv/engine/gpu_engine.h"
#include "latentkv/hash.h"
#include "latentkv/model/dense_kv_attention.h"
#include "latentkv/model/llama_forward.h"
#include "latentkv/pipeline/compressed_model.h"
#include "latentkv/pipeline/lkv_file.h"
#include "latentkv/reference/kivi_kv_cache.h"
#include "latentkv/status.h"

namespace latentkv::cli {

class KvCacheArgs {
 public:
  void add_to(ArgParser& p) {
    p.add_string("--kv-cache", "dense|kivi",
                 "dense: full keys/values (--kv-dtype); kivi: KIVI-style quantization-only "
                 "baseline",
                 &kind_);
    p.add_string("--kv-dtype", "f32|f16", "element type of the dense KV cache", &dtype_);
    p.add_string("--compressed", "C.lkv",
                 "run with the latent cache of this compressed model (made by latentkv-compress "
                 "from the same GGUF); only latents are cached",
                 &compressed_);
    p.add_int("--kivi-bits", "B", "kivi: key and value bits (2, 3, 4 or 8)", &kivi_bits_);
    p.add_int("--kivi-residual", "N", "kivi: newest tokens kept in fp16", &kivi_residual_);
    p.add_int("--kivi-group", "N",
              "kivi: tokens per key scale/zero and channels per value scale/zero", &kivi_group_);
    p.add_string("--device", "auto|cpu|cuda",
                 "where the model runs: cuda = the GPU engine (fp16 weights, fp16 or latent KV "
                 "cache), cpu = the fp32 reference; auto = cuda when a usable GPU is present and "
                 "the cache is one the GPU engine has (not kivi, not --kv-dtype f32)",
                 &device_);
  }

  /// Checks the combination and values; call before any file is opened.
  void validate(const ArgParser& p) {
    LKV_CHECK_ARG(kind_ == "dense" || kind_ == "kivi", "--kv-cache must be dense or kivi, got '",
                  kind_, "'");
    dtype_value_ = parse_kv_dtype(dtype_);
    LKV_CHECK_ARG(compressed_.empty() || (kind_ == "dense" && !p.given("--kv-dtype")),
                  "--compressed replaces the KV cache: do not combine it with --kv-cache or "
                  "--kv-dtype");
    LKV_CHECK_ARG(kind_ == "kivi" || (!p.given("--kivi-bits") && !p.given("--kivi-residual") &&
                                      !p.given("--kivi-group")),
                  "--kivi-* options need --kv-cache kivi");
    kivi_.key_bits = kivi_.value_bits = static_cast<int>(kivi_bits_);
    kivi_.residual = static_cast<int>(kivi_residual_);
    kivi_.key_group = kivi_.value_quant_group = static_cast<int>(kivi_group_);
    LKV_CHECK_ARG(kivi_bits_ == 2 || kivi_bits_ == 3 || kivi_bits_ == 4 || kivi_bits_ == 8,
                  "--kivi-bits must be 2, 3, 4 or 8, got ", kivi_bits_);
    LKV_CHECK_ARG(kivi_residual_ >= 0, "--kivi-residual must be >= 0, got ", kivi_residual_);
    LKV_CHECK_ARG(kivi_group_ >= 1, "--kivi-group must be >= 1, got ", kivi_group_);
    LKV_CHECK_ARG(device_ == "auto" || device_ == "cpu" || device_ == "cuda",
                  "--device must be auto, cpu or cuda, got '", device_, "'");
    const bool gpu_cache =
        kind_ == "dense" && !(p.given("--kv-dtype") && dtype_value_ == KvDtype::kF32);
    if (device_ == "cuda") {
      LKV_CHECK_ARG(gpu_cache,
                    "--device cuda runs the fp16 or the latent KV cache: drop "
                    "--kv-cache kivi / --kv-dtype f32 or use --device cpu");
      if (!gpu_available())
        LKV_THROW(StatusCode::kUnsupported,
                  "--device cuda: no CUDA GPU this build can run kernels on is available");
      gpu_ = true;
    } else {
      gpu_ = device_ == "auto" && gpu_cache && gpu_available();
    }
  }

  /// Loads the compressed model (if any) and checks it against the GGUF at `model_path`; the KIVI
  /// configuration against the model's shape. Cheap: call before the weights are loaded.
  void open(const std::string& model_path, const LlamaConfig& config) {
    if (!compressed_.empty()) {
      model_ = std::make_unique<CompressedModel>(
          load_compressed_model_for(compressed_, sha256_file(model_path), config));
    } else if (kind_ == "kivi") {
      validate_kivi_config(kivi_, config.num_kv_heads, config.head_dim);
    }
    baseline_ = int64_t{4} * config.n_layers * config.num_kv_heads * config.head_dim;
  }

  /// The model with the chosen cache; `weights` must outlive it.
  std::unique_ptr<LlamaForward> make_model(const LlamaWeights& weights) {
    if (model_) {
      auto backend = make_latent_attention(weights, *model_);
      bytes_ = static_cast<double>(backend->bytes_per_token());
      return std::make_unique<LlamaForward>(weights, std::move(backend));
    }
    if (kind_ == "kivi") {
      auto backend = std::make_unique<KiviAttention>(weights, kivi_);
      bytes_ = backend->bytes_per_token();
      return std::make_unique<LlamaForward>(weights, std::move(backend));
    }
    bytes_ = static_cast<double>(baseline_) * (dtype_value_ == KvDtype::kF32 ? 2 : 1);
    return std::make_unique<LlamaForward>(weights, dtype_value_);
  }

  /// Whether the model runs on the GPU engine (after validate()).
  bool gpu() const { return gpu_; }

  /// The model with the chosen cache on the chosen device (`weights` must outlive it), for
  /// sequences up to `max_seq_len` tokens on the GPU (0 = the model's context, at most 128K).
  /// With --device auto, a model or a size the GPU engine cannot take (kUnsupported: biases,
  /// head_dim, GQA ratio, compressed shapes; kOutOfMemory) falls back to the CPU with a note.
  std::unique_ptr<CausalLm> make_model_on_device(const LlamaWeights& weights, int64_t max_seq_len,
                                                 const ProgressFn& progress = {}) {
    if (gpu_) {
      try {
        bytes_ = static_cast<double>(model_ ? model_->kv_bytes_per_token() : baseline_);
        auto m = std::make_unique<GpuLlama>(weights, model_.get(), max_seq_len, progress);
        engine_ = m->engine().describe();
        return m;
      } catch (const Error& e) {
        const bool fallback = device_ == "auto" && (e.code() == StatusCode::kUnsupported ||
                                                    e.code() == StatusCode::kOutOfMemory);
        if (!fallback) throw;
        std::fprintf(stderr, "note: the GPU engine cannot run this (%s); running on the CPU\n",
                     e.what());
        gpu_ = false;
      }
    }
    return make_model(weights);
  }

  /// Bytes per cached token of the chosen cache (quantized tokens; the fp16 residual window of
  /// the latent and KIVI caches is not included). Valid after make_model().
  double bytes_per_token() const { return bytes_; }
  /// The fp16 dense cache of the same model: 4·n_layers·num_kv_heads·head_dim.
  int64_t baseline_bytes_per_token() const { return baseline_; }
  /// "dense f32", "kivi 4-bit (residual 128, group 32)", "latent (C.lkv: preset ...)".
  std::string describe() const {
    if (gpu_) return str_cat("GPU ", engine_, model_ ? str_cat(" from ", compressed_) : "");
    if (model_)
      return str_cat("latent ", compressed_, " (preset ", model_->recipe_value("preset"), ", ",
                     model_->key_quant.bits, "-bit latents, residual ", model_->key_quant.residual,
                     ")");
    if (kind_ == "kivi")
      return str_cat("kivi ", kivi_.key_bits, "-bit (residual ", kivi_.residual, ", group ",
                     kivi_.key_group, ")");
    return str_cat("dense ", kv_dtype_name(dtype_value_));
  }
  /// Short name for JSON: "dense", "kivi" or "latent".
  std::string kind() const { return model_ ? "latent" : kind_; }
  const std::string& compressed_path() const { return compressed_; }

 private:
  std::string kind_ = "dense", dtype_ = "f32", compressed_, device_ = "auto", engine_;
  bool gpu_ = false;
  int64_t kivi_bits_ = 4, kivi_residual_ = 128, kivi_group_ = 32;
  KvDtype dtype_value_ = KvDtype::kF32;
  KiviConfig kivi_;
  std::unique_ptr<CompressedModel> model_;
  int64_t baseline_ = 0;
  double bytes_ = 0;
};

}  // namespace latentkv::cli
