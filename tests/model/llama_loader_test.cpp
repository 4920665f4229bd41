// load_llama / read_llama_config on tiny GGUF files written by the test (every value known), on
// bad files (each bad-input case of the model layer), and on the real default model.
#include "latentkv/model/llama_loader.h"

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <set>

#include "support/expect_error.h"
#include "support/gguf_writer.h"
#include "support/test_support.h"

namespace latentkv {
namespace {

using testing::GgufWriter;

// A 2-layer Llama with every tensor in f32 and every element distinct: element k of the n-th
// tensor written is n·10000 + k.
struct TinyGguf {
  int layers = 2, d = 32, heads = 2, kv_heads = 1, head_dim = 16, ffn = 64, vocab = 10;
  std::string arch = "llama";
  bool tied = true;
  bool q_bias = false;
  std::set<std::string> skip_keys, skip_tensors;
  std::map<std::string, std::vector<int64_t>> shape_override;  // row-major shapes
  std::function<void(GgufWriter&)> extra_meta, extra_tensors;

  std::map<std::string, std::vector<float>> values;  // filled by write()

  std::string write(const std::string& name) {
    GgufWriter w;
    auto meta_u32 = [&](const std::string& k, uint32_t v) {
      if (!skip_keys.count(k)) w.add_u32(k, v);
    };
    if (!skip_keys.count("general.architecture")) w.add_string("general.architecture", arch);
    w.add_string("general.name", "tiny");
    const std::string a = arch + ".";
    meta_u32(a + "block_count", layers);
    meta_u32(a + "embedding_length", d);
    meta_u32(a + "attention.head_count", heads);
    meta_u32(a + "attention.head_count_kv", kv_heads);
    meta_u32(a + "feed_forward_length", ffn);
    meta_u32(a + "context_length", 64);
    if (!skip_keys.count(a + "attention.layer_norm_rms_epsilon")) {
      w.add_f32(a + "attention.layer_norm_rms_epsilon", 1e-5f);
    }
    w.add_f32(a + "rope.freq_base", 500000.0f);
    if (extra_meta) extra_meta(w);

    int n = 0;
    auto tensor = [&](const std::string& t, std::vector<int64_t> shape) {
      ++n;
      if (skip_tensors.count(t)) return;
      if (shape_override.count(t)) shape = shape_override[t];
      int64_t count = 1;
      for (int64_t s : shape) count *= s;
      std::vector<float> v(count);
      for (int64_t k = 0; k < count; ++k) v[k] = static_cast<float>(n * 10000 + k);
      values[t] = v;
      w.add_f32_tensor(t, shape, v);
    };
    tensor("token_embd.weight", {vocab, d});
    tensor("output_norm.weight", {d});
    if (!tied) tensor("output.weight", {vocab, d});
    for (int l = 0; l < layers; ++l) {
      const std::string p = "blk." + std::to_string(l) + ".";
      tensor(p + "attn_norm.weight", {d});
      tensor(p + "attn_q.weight", {heads * head_dim, d});
      if (q_bias) tensor(p + "attn_q.bias", {heads * head_dim});
      tensor(p + "attn_k.weight", {kv_heads * head_dim, d});
      tensor(p + "attn_v.weight", {kv_heads * head_dim, d});
      tensor(p + "attn_output.weight", {d, heads * head_dim});
      tensor(p + "ffn_norm.weight", {d});
      tensor(p + "ffn_gate.weight", {ffn, d});
      tensor(p + "ffn_up.weight", {ffn, d});
      tensor(p + "ffn_down.weight", {d, ffn});
    }
    if (extra_tensors) extra_tensors(w);
    const std::string path = testing::temp_dir() + "/" + name;
    w.write(path);
    return path;
  }
};

TEST(LlamaLoader, ReadsHyperparameters) {
  TinyGguf g;
  const GgufFile f(g.write("tiny_config.gguf"));
  const LlamaConfig c = read_llama_config(f);
  EXPECT_EQ(c.architecture, "llama");
  EXPECT_EQ(c.name, "tiny");
  EXPECT_EQ(c.n_layers, 2);
  EXPECT_EQ(c.d_model, 32);
  EXPECT_EQ(c.num_qo_heads, 2);
  EXPECT_EQ(c.num_kv_heads, 1);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.ffn_dim, 64);
  EXPECT_EQ(c.vocab_size, 10);
  EXPECT_EQ(c.context_length, 64);
  EXPECT_EQ(c.rms_eps, static_cast<double>(1e-5f));
  EXPECT_EQ(c.rope.theta, 500000.0);
  EXPECT_EQ(c.rope.linear_factor, 1.0);
  EXPECT_TRUE(c.rope.freq_factors.empty());
  EXPECT_TRUE(c.tied_embeddings);
}

TEST(LlamaLoader, DefaultsHeadCountKvAndKeyLength) {
  TinyGguf g;
  g.kv_heads = 2;  // tensors for 2 KV heads, but no head_count_kv key: defaults to head_count
  g.skip_keys = {"llama.attention.head_count_kv"};
  const LlamaConfig c = read_llama_config(GgufFile(g.write("tiny_defaults.gguf")));
  EXPECT_EQ(c.num_kv_heads, 2);
  EXPECT_EQ(c.head_dim, 16);  // embedding_length / head_count
}

TEST(LlamaLoader, KeyLengthOverridesDModelOverHeads) {
  TinyGguf g;
  g.head_dim = 8;  // q_dim 16 != d_model 32
  g.extra_meta = [](GgufWriter& w) { w.add_u32("llama.attention.key_length", 8); };
  const LlamaWeights m = load_llama(g.write("tiny_keylen.gguf"));
  EXPECT_EQ(m.config.head_dim, 8);
  EXPECT_EQ(m.layers[0].wq.rows(), 16);
  EXPECT_EQ(m.layers[0].wo.cols(), 16);
}

TEST(LlamaLoader, LoadsWeightsInHfRowOrder) {
  TinyGguf g;
  const LlamaWeights m = load_llama(g.write("tiny_weights.gguf"));
  ASSERT_EQ(m.layers.size(), 2u);
  const int d = g.d;
  // Non-permuted tensors: row-major [rows, cols] = GGUF element order.
  const std::vector<float>& emb = g.values["token_embd.weight"];
  ASSERT_EQ(m.tok_embeddings.rows(), 10);
  ASSERT_EQ(m.tok_embeddings.cols(), d);
  EXPECT_EQ(m.tok_embeddings(3, 5), emb[3 * d + 5]);
  EXPECT_EQ(m.output_norm[7], g.values["output_norm.weight"][7]);
  EXPECT_EQ(m.output.size(), 0);
  EXPECT_EQ(&m.lm_head(), &m.tok_embeddings);
  const LlamaLayerWeights& L1 = m.layers[1];
  EXPECT_EQ(L1.wv(9, 4), g.values["blk.1.attn_v.weight"][9 * d + 4]);
  EXPECT_EQ(L1.wo(31, 30), g.values["blk.1.attn_output.weight"][31 * 32 + 30]);
  EXPECT_EQ(L1.w_down(2, 63), g.values["blk.1.ffn_down.weight"][2 * 64 + 63]);
  EXPECT_EQ(L1.w_gate(63, 0), g.values["blk.1.ffn_gate.weight"][63 * d]);
  EXPECT_EQ(L1.w_up(1, 1), g.values["blk.1.ffn_up.weight"][d + 1]);
  EXPECT_EQ(L1.attn_norm[0], g.values["blk.1.attn_norm.weight"][0]);
  EXPECT_EQ(L1.ffn_norm[31], g.values["blk.1.ffn_norm.weight"][31]);
  EXPECT_EQ(L1.bq.size(), 0);

  // Q/K: within each head of 16 rows, GGUF row 2i+s is HF row 8s+i.
  const std::vector<float>& q = g.values["blk.1.attn_q.weight"];
  auto gguf_q = [&](int row, int col) { return q[row * d + col]; };
  EXPECT_EQ(L1.wq(0, 3), gguf_q(0, 3));            // i=0, s=0
  EXPECT_EQ(L1.wq(8, 3), gguf_q(1, 3));            // i=0, s=1
  EXPECT_EQ(L1.wq(1, 3), gguf_q(2, 3));            // i=1, s=0
  EXPECT_EQ(L1.wq(15, 3), gguf_q(15, 3));          // i=7, s=1
  EXPECT_EQ(L1.wq(16 + 9, 0), gguf_q(16 + 3, 0));  // head 1: i=1, s=1
  const std::vector<float>& k = g.values["blk.0.attn_k.weight"];
  for (int i = 0; i < 8; ++i) {
    for (int s = 0; s < 2; ++s) {
      EXPECT_EQ(m.layers[0].wk(8 * s + i, 11), k[(2 * i + s) * d + 11]) << i << "," << s;
    }
  }
}

TEST(LlamaLoader, QkRowOrderIsThePermutationOfDesignSection39) {
  const std::vector<int64_t> order = llama_qk_row_order(2, 4);
  EXPECT_EQ(order, (std::vector<int64_t>{0, 2, 1, 3, 4, 6, 5, 7}));
  EXPECT_LKV_ERROR(llama_qk_row_order(1, 3), StatusCode::kInvalidArgument, "even head_dim");
}

TEST(LlamaLoader, LoadsUntiedOutputBiasesAndRopeOptions) {
  TinyGguf g;
  g.tied = false;
  g.q_bias = true;
  g.extra_meta = [](GgufWriter& w) {
    w.add_string("llama.rope.scaling.type", "linear");
    w.add_f32("llama.rope.scaling.factor", 4.0f);
    w.add_u32("llama.rope.dimension_count", 16);
  };
  g.extra_tensors = [](GgufWriter& w) {
    w.add_f32_tensor("rope_freqs.weight", {8}, {1, 1, 1, 2, 4, 8, 8, 8});
  };
  const LlamaWeights m = load_llama(g.write("tiny_untied.gguf"));
  EXPECT_FALSE(m.config.tied_embeddings);
  EXPECT_EQ(m.output(9, 31), g.values["output.weight"][9 * 32 + 31]);
  EXPECT_EQ(&m.lm_head(), &m.output);
  EXPECT_EQ(m.config.rope.linear_factor, 4.0);
  EXPECT_EQ(m.config.rope.freq_factors, (std::vector<float>{1, 1, 1, 2, 4, 8, 8, 8}));
  const std::vector<float>& bq = g.values["blk.0.attn_q.bias"];
  ASSERT_EQ(m.layers[0].bq.size(), 32);
  EXPECT_EQ(m.layers[0].bq[8], bq[1]);  // biases are permuted like their rows
  EXPECT_EQ(m.layers[0].bq[1], bq[2]);
  EXPECT_EQ(m.layers[0].bk.size(), 0);
}

TEST(LlamaLoader, ReportsProgressPerLayer) {
  TinyGguf g;
  std::vector<int64_t> seen;
  load_llama(g.write("tiny_progress.gguf"), [&](int64_t done, int64_t total) {
    EXPECT_EQ(total, 2);
    seen.push_back(done);
  });
  EXPECT_EQ(seen, (std::vector<int64_t>{1, 2}));
}

// --- bad input ----------------------------------------------------------------------------

TEST(LlamaLoaderBadInput, NonLlamaArchitectureIsUnsupported) {
  TinyGguf g;
  g.arch = "gpt2";
  const std::string path = g.write("gpt2.gguf");
  EXPECT_LKV_ERROR(load_llama(path), StatusCode::kUnsupported,
                   path + ": architecture 'gpt2' is not supported (latentkv loads 'llama')");
}

TEST(LlamaLoaderBadInput, MissingRequiredMetadataIsNotFound) {
  for (const std::string key :
       {"general.architecture", "llama.block_count", "llama.embedding_length",
        "llama.attention.head_count", "llama.feed_forward_length", "llama.context_length",
        "llama.attention.layer_norm_rms_epsilon"}) {
    TinyGguf g;
    g.skip_keys = {key};
    const std::string path = g.write("missing_meta.gguf");
    EXPECT_LKV_ERROR(load_llama(path), StatusCode::kNotFound,
                     path + ": missing required metadata '" + key + "'");
  }
}

TEST(LlamaLoaderBadInput, MetadataOfTheWrongTypeIsCorrupt) {
  TinyGguf g;
  g.skip_keys = {"llama.block_count"};
  g.extra_meta = [](GgufWriter& w) { w.add_string("llama.block_count", "thirty"); };
  EXPECT_LKV_ERROR(load_llama(g.write("wrong_type.gguf")), StatusCode::kCorruptData,
                   "metadata 'llama.block_count' is string \"thirty\", expected int32");
}

TEST(LlamaLoaderBadInput, InconsistentHyperparametersAreCorrupt) {
  TinyGguf g;
  g.skip_keys = {"llama.attention.head_count_kv"};
  g.extra_meta = [](GgufWriter& w) { w.add_u32("llama.attention.head_count_kv", 3); };
  EXPECT_LKV_ERROR(load_llama(g.write("heads.gguf")), StatusCode::kCorruptData,
                   "invalid hyperparameters: num_qo_heads 2 is not a multiple of num_kv_heads 3");
  TinyGguf z;
  z.skip_keys = {"llama.block_count"};
  z.extra_meta = [](GgufWriter& w) { w.add_u32("llama.block_count", 0); };
  EXPECT_LKV_ERROR(load_llama(z.write("zero_layers.gguf")), StatusCode::kCorruptData,
                   "n_layers must be > 0");
}

TEST(LlamaLoaderBadInput, TensorShapeDisagreeingWithMetadataIsCorrupt) {
  TinyGguf g;
  g.shape_override["blk.1.attn_k.weight"] = {32, 32};  // metadata implies [16, 32]
  const std::string path = g.write("shape.gguf");
  EXPECT_LKV_ERROR(load_llama(path), StatusCode::kCorruptData,
                   path +
                       ": tensor 'blk.1.attn_k.weight' has shape [32, 32] f32 but the "
                       "metadata implies [16, 32]");
  TinyGguf v;
  v.shape_override["token_embd.weight"] = {10, 31};
  EXPECT_LKV_ERROR(load_llama(v.write("shape_emb.gguf")), StatusCode::kCorruptData,
                   "tensor 'token_embd.weight' has shape [10, 31] f32 but the metadata implies "
                   "[10, 32]");
  TinyGguf r;
  r.extra_tensors = [](GgufWriter& w) {
    w.add_f32_tensor("rope_freqs.weight", {5}, {1, 1, 1, 1, 1});
  };
  EXPECT_LKV_ERROR(load_llama(r.write("shape_rope.gguf")), StatusCode::kCorruptData,
                   "tensor 'rope_freqs.weight' has shape [5] f32 but the metadata implies [8]");
}

TEST(LlamaLoaderBadInput, VocabularyDisagreementIsCorrupt) {
  TinyGguf g;
  g.extra_meta = [](GgufWriter& w) { w.add_string_array("tokenizer.ggml.tokens", {"a", "b"}); };
  EXPECT_LKV_ERROR(load_llama(g.write("vocab.gguf")), StatusCode::kCorruptData,
                   "token_embd.weight has 10 rows but the tokenizer has 2 tokens");
}

TEST(LlamaLoaderBadInput, MissingTensorIsNotFound) {
  TinyGguf g;
  g.skip_tensors = {"blk.1.ffn_up.weight"};
  const std::string path = g.write("missing_tensor.gguf");
  EXPECT_LKV_ERROR(load_llama(path), StatusCode::kNotFound,
                   path + ": missing tensor 'blk.1.ffn_up.weight'");
}

TEST(LlamaLoaderBadInput, UnexpectedTensorsAreUnsupported) {
  TinyGguf g;
  g.extra_tensors = [](GgufWriter& w) {
    w.add_f32_tensor("blk.0.ffn_up.bias", {64}, std::vector<float>(64, 0.0f));
  };
  EXPECT_LKV_ERROR(load_llama(g.write("ffn_bias.gguf")), StatusCode::kUnsupported,
                   "tensor 'blk.0.ffn_up.bias' is not part of a 2-layer Llama model");
  TinyGguf extra_layer;
  extra_layer.extra_tensors = [](GgufWriter& w) {
    w.add_f32_tensor("blk.2.attn_norm.weight", {32}, std::vector<float>(32, 1.0f));
  };
  EXPECT_LKV_ERROR(load_llama(extra_layer.write("layer2.gguf")), StatusCode::kUnsupported,
                   "tensor 'blk.2.attn_norm.weight' is not part of a 2-layer Llama model");
  TinyGguf padded;
  padded.extra_tensors = [](GgufWriter& w) {
    w.add_f32_tensor("blk.01.attn_norm.weight", {32}, std::vector<float>(32, 1.0f));
  };
  EXPECT_LKV_ERROR(load_llama(padded.write("layer01.gguf")), StatusCode::kUnsupported,
                   "tensor 'blk.01.attn_norm.weight' is not part of a 2-layer Llama model");
}

TEST(LlamaLoaderBadInput, UnsupportedRopeVariantsAreUnsupported) {
  TinyGguf yarn;
  yarn.extra_meta = [](GgufWriter& w) { w.add_string("llama.rope.scaling.type", "yarn"); };
  EXPECT_LKV_ERROR(load_llama(yarn.write("yarn.gguf")), StatusCode::kUnsupported,
                   "RoPE scaling type 'yarn' is not supported");
  TinyGguf partial;
  partial.extra_meta = [](GgufWriter& w) { w.add_u32("llama.rope.dimension_count", 8); };
  EXPECT_LKV_ERROR(load_llama(partial.write("partial.gguf")), StatusCode::kUnsupported,
                   "partial rotary embeddings are not supported");
}

TEST(LlamaLoaderBadInput, UndequantizableTensorTypeIsUnsupported) {
  TinyGguf g;
  g.skip_tensors = {"token_embd.weight"};
  g.extra_tensors = [](GgufWriter& w) {
    w.add_tensor("token_embd.weight", GgmlType::kIQ4_NL, {32, 10},
                 std::vector<uint8_t>(10 * 18, 0));
  };
  EXPECT_LKV_ERROR(load_llama(g.write("iq4nl.gguf")), StatusCode::kUnsupported,
                   "tensor 'token_embd.weight' has type iq4_nl, which latentkv cannot dequantize");
}

TEST(LlamaLoaderBadInput, MissingFileIsNotFound) {
  const std::string path = testing::temp_dir() + "/no_model_here.gguf";
  EXPECT_LKV_ERROR(load_llama(path), StatusCode::kNotFound, path + ": cannot open");
}

// --- the real model -----------------------------------------------------------------------

TEST(LlamaLoader, LoadsTheDefaultModel) {
  LKV_REQUIRE_MODEL();
  const LlamaWeights m = load_llama(testing::default_model_path());
  const LlamaConfig& c = m.config;
  EXPECT_EQ(c.n_layers, 30);
  EXPECT_EQ(c.d_model, 576);
  EXPECT_EQ(c.num_qo_heads, 9);
  EXPECT_EQ(c.num_kv_heads, 3);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.ffn_dim, 1536);
  EXPECT_EQ(c.vocab_size, 49152);
  EXPECT_EQ(c.context_length, 8192);
  EXPECT_EQ(c.rope.theta, 100000.0);
  EXPECT_NEAR(c.rms_eps, 1e-5, 1e-12);
  EXPECT_TRUE(c.tied_embeddings);
  EXPECT_TRUE(c.rope.freq_factors.empty());
  ASSERT_EQ(m.layers.size(), 30u);
  EXPECT_EQ(m.tok_embeddings.rows(), 49152);
  EXPECT_EQ(m.output.size(), 0);

  // Sanity of values: finite, non-degenerate, of the scale a trained model has.
  EXPECT_TRUE(m.tok_embeddings.allFinite());
  EXPECT_GT(m.tok_embeddings.cwiseAbs().maxCoeff(), 0.01f);
  EXPECT_TRUE(m.output_norm.allFinite());
  for (int l : {0, 14, 29}) {
    const LlamaLayerWeights& L = m.layers[l];
    for (const MatrixRM* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) {
      EXPECT_TRUE(w->allFinite()) << "layer " << l;
      const float rms = std::sqrt(w->squaredNorm() / static_cast<float>(w->size()));
      EXPECT_GT(rms, 1e-3f) << "layer " << l;
      EXPECT_LT(rms, 1.0f) << "layer " << l;
    }
    EXPECT_TRUE(L.attn_norm.allFinite());
    EXPECT_GT(L.ffn_norm.cwiseAbs().minCoeff(), 0.0f);
  }
}

}  // namespace
}  // namespace latentkv
