#include "latentkv/pipeline/compressed_model.h"

#include "latentkv/reference/latent_store.h"
#include "latentkv/status.h"

namespace latentkv {

BaseModelIdentity BaseModelIdentity::of(const LlamaConfig& c, std::string sha256) {
  BaseModelIdentity id;
  id.sha256 = std::move(sha256);
  id.name = c.name;
  id.n_layers = c.n_layers;
  id.d_model = c.d_model;
  id.num_qo_heads = c.num_qo_heads;
  id.num_kv_heads = c.num_kv_heads;
  id.head_dim = c.head_dim;
  id.vocab_size = c.vocab_size;
  return id;
}

std::string BaseModelIdentity::summary() const {
  return str_cat(name.empty() ? "(unnamed)" : name, ": ", n_layers, " layers, d_model ", d_model,
                 ", ", num_qo_heads, " query / ", num_kv_heads, " KV heads x ", head_dim,
                 ", vocab ", vocab_size);
}

bool BaseModelIdentity::same_shape(const LlamaConfig& c) const {
  return n_layers == c.n_layers && d_model == c.d_model && num_qo_heads == c.num_qo_heads &&
         num_kv_heads == c.num_kv_heads && head_dim == c.head_dim && vocab_size == c.vocab_size;
}

int64_t CompressedModel::kv_bytes_per_token() const {
  int64_t bytes = 0;
  for (const CompressedLayer& l : layers) {
    for (int r : l.factors.key.ranks) bytes += latent_bytes_per_token(r, key_quant);
    for (int r : l.factors.value.ranks) bytes += latent_bytes_per_token(r, value_quant);
  }
  return bytes;
}

int64_t CompressedModel::fp16_kv_bytes_per_token() const {
  return int64_t{4} * base.n_layers * base.num_kv_heads * base.head_dim;
}

LatentCacheConfig CompressedModel::cache_config() const {
  LatentCacheConfig c;
  c.key = key_quant;
  c.value = value_quant;
  c.chunk = 1;
  return c;
}

std::string CompressedModel::recipe_value(const std::string& key) const {
  for (const auto& [k, v] : recipe)
    if (k == key) return v;
  return "";
}

void CompressedModel::validate() const {
  LKV_CHECK_ARG(base.n_layers > 0 && base.d_model > 0 && base.num_qo_heads > 0 &&
                    base.num_kv_heads > 0 && base.head_dim > 0,
                "compressed model: base model shape is not positive");
  LKV_CHECK_ARG(base.num_qo_heads % base.num_kv_heads == 0, "compressed model: ", base.num_kv_heads,
                " KV heads do not divide ", base.num_qo_heads, " query heads");
  LKV_CHECK_ARG(static_cast<int>(layers.size()) == base.n_layers, "compressed model has ",
                layers.size(), " layers, its base model ", base.n_layers);
  const int gqa = base.num_qo_heads / base.num_kv_heads;
  for (size_t l = 0; l < layers.size(); ++l) {
    const LatentLayerFactors& f = layers[l].factors;
    for (const ProjectionFactors* p : {&f.key, &f.value}) {
      const char* which = p == &f.key ? "key" : "value";
      try {
        p->validate();
      } catch (const Error& e) {
        LKV_THROW(StatusCode::kInvalidArgument, "layer ", l, " ", which, " ", e.what());
      }
      LKV_CHECK_ARG(p->d_model == base.d_model && p->head_dim == base.head_dim &&
                        p->num_kv_heads == base.num_kv_heads,
                    "layer ", l, " ", which, " factors do not match the base model's shape");
      const QuantConfig& q = p == &f.key ? key_quant : value_quant;
      for (int r : p->ranks) validate_latent_store_config(q, r, 1);
    }
    if (f.folded()) {
      const FoldedOutputProjection& o = f.folded_output;
      LKV_CHECK_ARG(o.d_model == base.d_model && o.num_qo_heads == base.num_qo_heads &&
                        static_cast<int>(o.head_offsets.size()) == base.num_qo_heads + 1,
                    "layer ", l, " folded output projection has the wrong shape");
      for (int h = 0; h < base.num_qo_heads; ++h) {
        const int g = f.value.head_location(h / gqa).first;
        LKV_CHECK_ARG(o.head_offsets[h + 1] - o.head_offsets[h] == f.value.ranks[g], "layer ", l,
                      " folded output projection: query head ", h, " has width ",
                      o.head_offsets[h + 1] - o.head_offsets[h], ", its value group rank ",
                      f.value.ranks[g]);
      }
      LKV_CHECK_ARG(o.head_offsets.front() == 0 &&
                        static_cast<int64_t>(o.w.size()) == int64_t{o.d_model} * o.width(),
                    "layer ", l, " folded output projection has ", o.w.size(), " weights");
      LKV_CHECK_ARG(o.bias.empty() || static_cast<int>(o.bias.size()) == o.d_model, "layer ", l,
                    " folded output bias has ", o.bias.size(), " entries");
    }
  }
}

void check_base_model(const CompressedModel& model, const std::string& gguf_sha256,
                      const LlamaConfig& config, const std::string& what) {
  LKV_CHECK_ARG(model.base.sha256 == gguf_sha256, what, " was compressed from a different model (",
                model.base.summary(), ", sha256 ", model.base.sha256,
                "); the given GGUF has sha256 ", gguf_sha256);
  LKV_CHECK_ARG(model.base.same_shape(config), what,
                " records a base model shape that differs from the GGUF's: ", model.base.summary());
}

std::unique_ptr<LatentAttention> make_latent_attention(const LlamaWeights& weights,
                                                       const CompressedModel& model) {
  LKV_CHECK_ARG(model.base.same_shape(weights.config),
                "compressed model does not fit these weights: ", model.base.summary());
  std::vector<LatentLayerFactors> factors;
  factors.reserve(model.layers.size());
  for (const CompressedLayer& l : model.layers) factors.push_back(l.factors);
  return std::make_unique<LatentAttention>(weights, std::move(factors), model.cache_config());
}

}  // namespace latentkv
