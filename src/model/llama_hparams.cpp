// read_llama_config: Llama hyperparameters from GGUF metadata.
#include <cmath>

#include "latentkv/gguf/dequantize.h"
#include "latentkv/model/llama_loader.h"

namespace latentkv {
namespace {

[[noreturn]] void fail(StatusCode code, const GgufFile& f, const std::string& what) {
  LKV_THROW(code, f.path(), ": ", what);
}

// RoPE: base frequency, linear scaling, Llama-3 per-frequency factors.
RopeConfig read_rope(const GgufFile& f, const std::string& arch, int head_dim) {
  RopeConfig rope;
  rope.theta = f.get_or<double>(arch + ".rope.freq_base", 10000.0);
  if (const GgufValue* dims = f.find(arch + ".rope.dimension_count")) {
    const std::optional<int> n = dims->as<int>();
    if (!n || *n != head_dim) {
      fail(StatusCode::kUnsupported, f,
           str_cat("rotary dimension ", dims->describe(), " differs from head_dim ", head_dim,
                   " (partial rotary embeddings are not supported)"));
    }
  }
  const std::string type = f.get_or<std::string>(arch + ".rope.scaling.type", "none");
  if (type == "linear") {
    const double factor = f.get_or<double>(arch + ".rope.scaling.factor", 1.0);
    rope.linear_factor = factor == 0.0 ? 1.0 : factor;  // llama.cpp reads 0 as "unset"
  } else if (type != "none") {
    fail(StatusCode::kUnsupported, f,
         str_cat("RoPE scaling type '", type,
                 "' is not supported (only linear and Llama-3 rope_freqs)"));
  }
  // Older converters wrote linear scaling as a single key.
  if (const GgufValue* legacy = f.find(arch + ".rope.scale_linear")) {
    const std::optional<double> s = legacy->as<double>();
    if (!s) fail(StatusCode::kCorruptData, f, str_cat("rope.scale_linear is ", legacy->describe()));
    if (*s != 0.0 && *s != 1.0) rope.linear_factor = *s;
  }
  if (const GgufTensorInfo* t = f.find_tensor("rope_freqs.weight")) {
    if (t->n_dims() != 1 || t->ne[0] != head_dim / 2) {
      fail(StatusCode::kCorruptData, f,
           str_cat("tensor 'rope_freqs.weight' has shape ", t->describe(),
                   " but the metadata implies [", head_dim / 2, "]"));
    }
    const std::vector<float> v = dequantize_tensor(f, *t);
    rope.freq_factors.assign(v.begin(), v.end());
  }
  return rope;
}

int vocab_size(const GgufFile& f, const std::string& arch) {
  const GgufTensorInfo& emb = f.tensor("token_embd.weight");
  if (emb.n_dims() != 2) {
    fail(StatusCode::kCorruptData, f,
         str_cat("tensor 'token_embd.weight' has shape ", emb.describe(), ", expected a matrix"));
  }
  const int64_t rows = emb.ne[1];
  if (const GgufValue* v = f.find(arch + ".vocab_size")) {
    if (v->as<int64_t>() != rows) {
      fail(StatusCode::kCorruptData, f,
           str_cat("token_embd.weight has ", rows, " rows but ", arch, ".vocab_size is ",
                   v->describe()));
    }
  }
  if (const GgufValue* tokens = f.find("tokenizer.ggml.tokens")) {
    if (tokens->is_array() && static_cast<int64_t>(tokens->array_size()) != rows) {
      fail(StatusCode::kCorruptData, f,
           str_cat("token_embd.weight has ", rows, " rows but the tokenizer has ",
                   tokens->array_size(), " tokens"));
    }
  }
  if (rows <= 0 || rows > INT32_MAX) {
    fail(StatusCode::kCorruptData, f, str_cat("vocabulary size ", rows, " is out of range"));
  }
  return static_cast<int>(rows);
}

// LlamaConfig::validate reports kInvalidArgument; coming from a file, that is corrupt data.
void validate(const LlamaConfig& c, const GgufFile& f) {
  try {
    c.validate();
  } catch (const Error& e) {
    fail(e.code() == StatusCode::kInvalidArgument ? StatusCode::kCorruptData : e.code(), f,
         str_cat("invalid hyperparameters: ", e.what()));
  }
}

}  // namespace

LlamaConfig read_llama_config(const GgufFile& f) {
  LlamaConfig c;
  c.architecture = f.get<std::string>("general.architecture");
  if (c.architecture != "llama") {
    fail(StatusCode::kUnsupported, f,
         str_cat("architecture '", c.architecture, "' is not supported (latentkv loads 'llama')"));
  }
  const std::string& a = c.architecture;
  c.name = f.get_or<std::string>("general.name", "");
  c.n_layers = f.get<int>(a + ".block_count");
  c.d_model = f.get<int>(a + ".embedding_length");
  c.num_qo_heads = f.get<int>(a + ".attention.head_count");
  c.num_kv_heads = f.get_or<int>(a + ".attention.head_count_kv", c.num_qo_heads);
  if (!f.has(a + ".attention.key_length") &&
      (c.num_qo_heads <= 0 || c.d_model % c.num_qo_heads != 0)) {
    fail(StatusCode::kCorruptData, f,
         str_cat("embedding_length ", c.d_model, " is not a multiple of head_count ",
                 c.num_qo_heads, " and attention.key_length is absent"));
  }
  c.head_dim = f.get_or<int>(a + ".attention.key_length", c.d_model / c.num_qo_heads);
  const int value_length = f.get_or<int>(a + ".attention.value_length", c.head_dim);
  if (value_length != c.head_dim) {
    fail(StatusCode::kUnsupported, f,
         str_cat("attention.value_length ", value_length, " differs from key_length ", c.head_dim));
  }
  c.ffn_dim = f.get<int>(a + ".feed_forward_length");
  c.context_length = f.get<int64_t>(a + ".context_length");
  c.rms_eps = f.get<double>(a + ".attention.layer_norm_rms_epsilon");
  c.vocab_size = vocab_size(f, a);
  c.tied_embeddings = f.find_tensor("output.weight") == nullptr;
  validate(c, f);  // before read_rope, which needs a positive even head_dim
  c.rope = read_rope(f, a, c.head_dim);
  validate(c, f);
  return c;
}

}  // namespace latentkv
