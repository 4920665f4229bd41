// load_llama: Llama weights from a GGUF file, dequantized to fp32 in HF row order.
#include "latentkv/model/llama_loader.h"

#include <deque>
#include <set>

#include "latentkv/gguf/dequantize.h"

namespace latentkv {
namespace {

// True for the tensor names a Llama model with n_layers blocks consists of.
bool is_llama_tensor(std::string_view name, int n_layers) {
  static const std::set<std::string_view> kGlobal = {"token_embd.weight", "output_norm.weight",
                                                     "output.weight", "rope_freqs.weight"};
  static const std::set<std::string_view> kBlock = {
      "attn_norm.weight",   "attn_q.weight",   "attn_k.weight",   "attn_v.weight",
      "attn_output.weight", "attn_q.bias",     "attn_k.bias",     "attn_v.bias",
      "attn_output.bias",   "ffn_norm.weight", "ffn_gate.weight", "ffn_up.weight",
      "ffn_down.weight"};
  if (kGlobal.count(name)) return true;
  constexpr std::string_view kPrefix = "blk.";
  if (name.substr(0, kPrefix.size()) != kPrefix) return false;
  name.remove_prefix(kPrefix.size());
  int64_t layer = 0;
  size_t digits = 0;
  while (digits < name.size() && digits < 9 && name[digits] >= '0' && name[digits] <= '9') {
    layer = layer * 10 + (name[digits++] - '0');
  }
  const bool canonical = digits == 1 || name[0] != '0';  // "blk.01." is not layer 1's name
  if (digits == 0 || !canonical || digits >= name.size() || name[digits] != '.' ||
      layer >= n_layers) {
    return false;
  }
  return kBlock.count(name.substr(digits + 1)) > 0;
}

// Rejects files carrying tensors the model would silently ignore (e.g. FFN biases), which would
// otherwise give wrong outputs without any error.
void check_tensor_names(const GgufFile& f, int n_layers) {
  for (const GgufTensorInfo& t : f.tensors()) {
    if (!is_llama_tensor(t.name, n_layers)) {
      LKV_THROW(StatusCode::kUnsupported, f.path(), ": tensor '", t.name, "' is not part of a ",
                n_layers, "-layer Llama model");
    }
  }
}

// Looks tensors up by name and checks their shape and type before dequantizing them.
class TensorSource {
 public:
  explicit TensorSource(const GgufFile& f) : f_(f) {}

  /// The tensor `name` with row-major `shape`; nullptr when optional and absent.
  const GgufTensorInfo* get(const std::string& name, const std::vector<int64_t>& shape,
                            bool required = true) {
    const GgufTensorInfo* t = f_.find_tensor(name);
    if (t == nullptr) {
      if (required) LKV_THROW(StatusCode::kNotFound, f_.path(), ": missing tensor '", name, "'");
      return nullptr;
    }
    // ggml treats missing trailing dimensions as 1, so compare padded to 4 dimensions.
    std::vector<int64_t> want(shape.rbegin(), shape.rend()), have = t->ne;
    want.resize(4, 1);
    have.resize(4, 1);
    if (want != have) {
      std::string expected = "[";
      for (size_t i = 0; i < shape.size(); ++i) expected += str_cat(i ? ", " : "", shape[i]);
      LKV_THROW(StatusCode::kCorruptData, f_.path(), ": tensor '", name, "' has shape ",
                t->describe(), " but the metadata implies ", expected, "]");
    }
    if (!ggml_can_dequantize(t->type)) {
      LKV_THROW(StatusCode::kUnsupported, f_.path(), ": tensor '", name, "' has type ",
                ggml_type_name(t->type), ", which latentkv cannot dequantize");
    }
    return t;
  }

  /// Queues the matrix `name` ([rows, cols]) for dequantization into `out` (resized now).
  void matrix(const std::string& name, int64_t rows, int64_t cols, MatrixRM* out,
              const std::vector<int64_t>* row_order = nullptr) {
    const GgufTensorInfo* t = get(name, {rows, cols});
    out->resize(rows, cols);
    jobs_.push_back({t->type, f_.tensor_data(*t), rows, cols, out->data(), row_order});
  }

  /// Queues the vector `name` ([n]); element i lands at order[i] when `order` is given.
  void vector(const std::string& name, int64_t n, Eigen::VectorXf* out, bool required = true,
              const std::vector<int64_t>* order = nullptr) {
    const GgufTensorInfo* t = get(name, {n}, required);
    if (t == nullptr) return;
    out->resize(n);
    if (order == nullptr) {
      jobs_.push_back({t->type, f_.tensor_data(*t), 1, n, out->data()});
      return;
    }
    // A vector is one ggml row, so its permutation is applied after decoding.
    std::vector<float>& tmp = scratch_.emplace_back(n);
    jobs_.push_back({t->type, f_.tensor_data(*t), 1, n, tmp.data()});
    reorders_.push_back({&tmp, out, order});
  }

  /// Dequantizes everything queued so far (in one parallel region) and clears the queue.
  void run() {
    dequantize_batch(jobs_);
    for (const Reorder& r : reorders_) {
      for (size_t i = 0; i < r.from->size(); ++i) (*r.to)[(*r.order)[i]] = (*r.from)[i];
    }
    jobs_.clear();
    reorders_.clear();
    scratch_.clear();
  }

 private:
  struct Reorder {
    const std::vector<float>* from;
    Eigen::VectorXf* to;
    const std::vector<int64_t>* order;
  };
  const GgufFile& f_;
  std::vector<DequantizeJob> jobs_;
  std::deque<std::vector<float>> scratch_;  // deque: references stay valid as it grows
  std::vector<Reorder> reorders_;
};

}  // namespace

std::vector<int64_t> llama_qk_row_order(int n_heads, int head_dim) {
  LKV_CHECK_ARG(n_heads > 0 && head_dim > 0 && head_dim % 2 == 0,
                "Q/K row order needs n_heads > 0 and an even head_dim, got ", n_heads, " and ",
                head_dim);
  const int half = head_dim / 2;
  std::vector<int64_t> order(static_cast<size_t>(n_heads) * head_dim);
  for (int h = 0; h < n_heads; ++h) {
    for (int i = 0; i < half; ++i) {
      for (int s = 0; s < 2; ++s) {
        order[static_cast<size_t>(h) * head_dim + 2 * i + s] =
            static_cast<int64_t>(h) * head_dim + s * half + i;
      }
    }
  }
  return order;
}

LlamaWeights load_llama(const GgufFile& file, const ProgressFn& progress) {
  LlamaWeights w;
  w.config = read_llama_config(file);
  const LlamaConfig& c = w.config;
  const int64_t d = c.d_model, q_dim = int64_t{c.num_qo_heads} * c.head_dim;
  const int64_t kv_dim = int64_t{c.num_kv_heads} * c.head_dim;
  const std::vector<int64_t> q_order = llama_qk_row_order(c.num_qo_heads, c.head_dim);
  const std::vector<int64_t> k_order = llama_qk_row_order(c.num_kv_heads, c.head_dim);

  check_tensor_names(file, c.n_layers);
  TensorSource src(file);
  src.matrix("token_embd.weight", c.vocab_size, d, &w.tok_embeddings);
  src.vector("output_norm.weight", d, &w.output_norm);
  if (!c.tied_embeddings) src.matrix("output.weight", c.vocab_size, d, &w.output);
  src.run();

  w.layers.resize(c.n_layers);
  for (int l = 0; l < c.n_layers; ++l) {
    LlamaLayerWeights& L = w.layers[l];
    const std::string p = str_cat("blk.", l, ".");
    src.vector(p + "attn_norm.weight", d, &L.attn_norm);
    src.matrix(p + "attn_q.weight", q_dim, d, &L.wq, &q_order);
    src.matrix(p + "attn_k.weight", kv_dim, d, &L.wk, &k_order);
    src.matrix(p + "attn_v.weight", kv_dim, d, &L.wv);
    src.matrix(p + "attn_output.weight", d, q_dim, &L.wo);
    src.vector(p + "attn_q.bias", q_dim, &L.bq, false, &q_order);
    src.vector(p + "attn_k.bias", kv_dim, &L.bk, false, &k_order);
    src.vector(p + "attn_v.bias", kv_dim, &L.bv, false);
    src.vector(p + "attn_output.bias", d, &L.bo, false);
    src.vector(p + "ffn_norm.weight", d, &L.ffn_norm);
    src.matrix(p + "ffn_gate.weight", c.ffn_dim, d, &L.w_gate);
    src.matrix(p + "ffn_up.weight", c.ffn_dim, d, &L.w_up);
    src.matrix(p + "ffn_down.weight", d, c.ffn_dim, &L.w_down);
    src.run();  // one parallel region per layer keeps progress meaningful and fork/joins few
    if (progress) progress(l + 1, c.n_layers);
  }
  return w;
}

LlamaWeights load_llama(const std::string& path, const ProgressFn& progress) {
  const GgufFile file(path);
  return load_llama(file, progress);
}

}  // namespace latentkv
