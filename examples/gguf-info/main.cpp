// latentkv-gguf-info: prints a GGUF file's header, metadata and tensors, and dumps dequantized
// tensors or the loaded Llama weights as raw float32 for cross-checks
// (scripts/check_gguf_dequant.py, scripts/check_weights_vs_hf.py).
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include "common/args.h"
#include "common/json.h"
#include "latentkv/gguf/dequantize.h"
#include "latentkv/gguf/gguf_file.h"
#include "latentkv/model/llama_loader.h"

namespace {

using namespace latentkv;

void write_f32(const std::string& path, const float* data, int64_t n) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(n * sizeof(float)));
  if (!out.good()) LKV_THROW(StatusCode::kIoError, path, ": cannot write");
}

void print_summary(const GgufFile& f, bool tensors) {
  std::printf("file: %s\nversion: %u\nsize: %llu bytes\nalignment: %llu\ndata offset: %llu\n",
              f.path().c_str(), f.version(), static_cast<unsigned long long>(f.file_size()),
              static_cast<unsigned long long>(f.alignment()),
              static_cast<unsigned long long>(f.data_offset()));
  std::printf("metadata (%zu):\n", f.metadata().size());
  for (const GgufKeyValue& kv : f.metadata()) {
    std::printf("  %.*s = %s\n", static_cast<int>(kv.key.size()), kv.key.data(),
                kv.value.describe().c_str());
  }
  std::printf("tensors (%zu):\n", f.tensors().size());
  if (!tensors) return;
  for (const GgufTensorInfo& t : f.tensors()) {
    std::printf("  %-28.*s %-22s offset %llu, %llu bytes\n", static_cast<int>(t.name.size()),
                t.name.data(), t.describe().c_str(), static_cast<unsigned long long>(t.offset),
                static_cast<unsigned long long>(t.n_bytes));
  }
}

// load_llama's result: <dir>/config.json and every weight as <dir>/<GGUF tensor name>.f32
// (row-major, W_q/W_k rows in HF order).
void dump_llama(const GgufFile& f, const std::string& dir) {
  const auto t0 = std::chrono::steady_clock::now();
  const LlamaWeights w = load_llama(f);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "load_llama: %.3f s\n", secs);
  auto mat = [&](const std::string& name, const MatrixRM& m) {
    if (m.size() > 0) write_f32(dir + "/" + name + ".f32", m.data(), m.size());
  };
  auto vec = [&](const std::string& name, const Eigen::VectorXf& v) {
    if (v.size() > 0) write_f32(dir + "/" + name + ".f32", v.data(), v.size());
  };
  const LlamaConfig& c = w.config;
  cli::JsonObject config;
  config.add("architecture", c.architecture)
      .add("n_layers", c.n_layers)
      .add("d_model", c.d_model)
      .add("num_qo_heads", c.num_qo_heads)
      .add("num_kv_heads", c.num_kv_heads)
      .add("head_dim", c.head_dim)
      .add("ffn_dim", c.ffn_dim)
      .add("vocab_size", c.vocab_size)
      .add("context_length", c.context_length)
      .add("rms_eps", c.rms_eps)
      .add("rope_theta", c.rope.theta)
      .add("rope_linear_factor", c.rope.linear_factor)
      .add("rope_freq_factors",
           std::vector<double>(c.rope.freq_factors.begin(), c.rope.freq_factors.end()))
      .add("tied_embeddings", c.tied_embeddings);
  std::ofstream(dir + "/config.json") << config.str() << "\n";
  mat("token_embd.weight", w.tok_embeddings);
  vec("output_norm.weight", w.output_norm);
  mat("output.weight", w.output);
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const LlamaLayerWeights& L = w.layers[l];
    const std::string p = "blk." + std::to_string(l) + ".";
    vec(p + "attn_norm.weight", L.attn_norm);
    mat(p + "attn_q.weight", L.wq);
    mat(p + "attn_k.weight", L.wk);
    mat(p + "attn_v.weight", L.wv);
    mat(p + "attn_output.weight", L.wo);
    vec(p + "attn_q.bias", L.bq);
    vec(p + "attn_k.bias", L.bk);
    vec(p + "attn_v.bias", L.bv);
    vec(p + "attn_output.bias", L.bo);
    vec(p + "ffn_norm.weight", L.ffn_norm);
    mat(p + "ffn_gate.weight", L.w_gate);
    mat(p + "ffn_up.weight", L.w_up);
    mat(p + "ffn_down.weight", L.w_down);
  }
}

int run(int argc, char** argv) {
  std::string model_path, dequant_name, out_path, dump_dir;
  bool no_tensors = false;
  cli::ArgParser args("latentkv-gguf-info",
                      "Prints a GGUF file's header, metadata and tensor list; optionally dumps "
                      "tensors as raw little-endian float32.");
  args.add_string("--model", "M.gguf", "GGUF file", &model_path, true);
  args.add_flag("--no-tensors", "omit the tensor list", &no_tensors);
  args.add_string("--dequant", "NAME", "dequantize tensor NAME (GGUF element order) to --out",
                  &dequant_name);
  args.add_string("--out", "FILE", "output file for --dequant", &out_path);
  args.add_string("--dump-llama", "DIR",
                  "load the model with load_llama and write every weight to DIR/<name>.f32 "
                  "(row-major, W_q/W_k rows in HF order)",
                  &dump_dir);
  if (const int rc = args.parse(argc, argv); rc >= 0) return rc;
  if (dequant_name.empty() != out_path.empty()) {
    std::fprintf(stderr, "error: --dequant and --out go together\n");
    return cli::kExitUsage;
  }

  const GgufFile file(model_path);
  if (!dequant_name.empty()) {
    const std::vector<float> v = dequantize_tensor(file, file.tensor(dequant_name));
    write_f32(out_path, v.data(), static_cast<int64_t>(v.size()));
    std::printf("%s %s\n", dequant_name.c_str(), file.tensor(dequant_name).describe().c_str());
    return cli::kExitOk;
  }
  if (!dump_dir.empty()) {
    dump_llama(file, dump_dir);
    return cli::kExitOk;
  }
  print_summary(file, !no_tensors);
  return cli::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  return latentkv::cli::run_main([&] { return run(argc, argv); });
}
