// latentkv-layer-study: how well each decomposition choice reproduces the key and value outputs of
// real layers (plain vs whitened SVD, consecutive vs similarity grouping, with/without ALS), from
// Gram statistics of calibration text. Prints one markdown table (the issue-3 study in README).
#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "common/args.h"
#include "latentkv/compress/calib_stats.h"
#include "latentkv/compress/layer_study.h"
#include "latentkv/eval/perplexity.h"
#include "latentkv/eval/text_file.h"
#include "latentkv/fisher/fisher_calibration.h"
#include "latentkv/gguf/gguf_file.h"
#include "latentkv/model/llama_forward.h"
#include "latentkv/model/llama_loader.h"
#include "latentkv/progress.h"
#include "latentkv/tokenizer/tokenizer.h"

namespace {

using namespace latentkv;

std::vector<int> parse_int_list(const std::string& text, const char* flag) {
  std::vector<int> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    size_t used = 0;
    int value = 0;
    try {
      value = std::stoi(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    LKV_CHECK_ARG(used == item.size() && !item.empty(), flag, ": '", item, "' is not an integer");
    out.push_back(value);
  }
  LKV_CHECK_ARG(!out.empty(), flag, " is empty");
  return out;
}

int run(int argc, char** argv) {
  std::string model_path, calib_path, layers_text = "0,15,29", group_sizes_text;
  int64_t windows = 16, ctx = 512, threads = 0;
  cli::ArgParser args("latentkv-layer-study",
                      "Relative output error of K and V of chosen layers under each decomposition "
                      "choice\n(plain/whitened SVD, consecutive/similarity grouping, with/without "
                      "ALS) at 50 % and 25 % rank,\nfrom Gram statistics of calibration text.");
  args.add_string("--model", "M.gguf", "model file", &model_path, true);
  args.add_string("--calib", "FILE", "UTF-8 calibration text (e.g. wikitext-2 valid.txt)",
                  &calib_path, true);
  args.add_string("--layers", "L,L,..", "layers to study", &layers_text);
  args.add_string("--group-sizes", "G,G,..",
                  "KV heads per group to study (default: 1 and all heads)", &group_sizes_text);
  args.add_int("--windows", "N", "calibration windows, spread evenly over the text", &windows);
  args.add_int("--ctx", "N", "tokens per window", &ctx);
  args.add_int("--threads", "T", "CPU threads (default: all cores)", &threads);
  args.set_epilog(
      "example:\n  latentkv-layer-study --model models/SmolLM2-135M-Instruct.Q4_1.gguf \\\n"
      "      --calib ../shared/data/wikitext-2/valid.txt --layers 0,15,29");
  if (const int rc = args.parse(argc, argv); rc >= 0) return rc;
  LKV_CHECK_ARG(threads >= 0, "--threads must be >= 1, got ", threads);
  LKV_CHECK_ARG(ctx >= 2 && windows >= 1, "--ctx must be >= 2 and --windows >= 1");
  set_num_threads(static_cast<int>(threads));

  GgufFile file(model_path);
  const LlamaConfig config = read_llama_config(file);
  const std::vector<int> layers = parse_int_list(layers_text, "--layers");
  for (int l : layers)
    LKV_CHECK_ARG(l >= 0 && l < config.n_layers, "--layers: layer ", l, " is outside 0..",
                  config.n_layers - 1);
  std::vector<int> group_sizes = group_sizes_text.empty()
                                     ? std::vector<int>{1, config.num_kv_heads}
                                     : parse_int_list(group_sizes_text, "--group-sizes");
  for (int g : group_sizes)
    LKV_CHECK_ARG(g >= 1 && config.num_kv_heads % g == 0, "--group-sizes: ", g,
                  " does not divide num_kv_heads ", config.num_kv_heads);
  LKV_CHECK_ARG(ctx <= config.context_length, "--ctx ", ctx, " exceeds the model's context ",
                config.context_length);

  const Tokenizer tokenizer = Tokenizer::from_gguf(file);
  const std::vector<TokenId> text = perplexity_tokens(tokenizer, read_text_file(calib_path), false);
  const auto calib =
      calibration_windows(text, static_cast<int>(ctx), static_cast<int>(windows), -1);
  LlamaWeights weights;
  {
    ProgressBar bar("loading", "layers");
    weights = load_llama(file, bar.callback());
  }

  // Only the studied layers' k/v_proj inputs are accumulated.
  CalibStats stats = CalibStats::empty(config.n_layers, config.d_model);
  LlamaForward model(weights, KvDtype::kF32);
  model.set_layer_input_observer([&](int layer, const Eigen::Ref<const MatrixRM>& x) {
    for (int l : layers)
      if (l == layer) stats.layers[layer].accumulate(x);
  });
  const auto start = std::chrono::steady_clock::now();
  {
    ProgressBar bar("calibration", "windows");
    for (size_t i = 0; i < calib.size(); ++i) {
      model.reset();
      model.forward(calib[i], /*logits=*/nullptr);
      bar.update(static_cast<int64_t>(i + 1), static_cast<int64_t>(calib.size()));
    }
  }
  const double calib_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "calibration: %zu windows of %lld tokens in %.1f s\n", calib.size(),
               static_cast<long long>(ctx), calib_s);

  std::printf(
      "| layer | group_size | proj | rank kept | rank | factorization | grouping | ALS | "
      "rel. output error |\n|---|---|---|---|---|---|---|---|---|\n");
  for (int l : layers) {
    const Eigen::MatrixXd gram = stats.layers[l].gram();
    const LlamaLayerWeights& w = weights.layers[l];
    for (int g : group_sizes) {
      LayerStudyOptions options;
      options.group_size = g;
      const auto rows = layer_study(w.wk, w.wv, gram, config.num_kv_heads, config.head_dim,
                                    CalibrationTarget::same(gram), options);
      for (const LayerStudyRow& r : rows)
        std::printf("| %d | %d | %s | %.0f %% | %d | %s | %s | %s | %.4f |\n", l, g,
                    r.projection.c_str(), 100.0 * r.rank_fraction, r.rank, r.factorization.c_str(),
                    r.grouping.c_str(), r.als ? "yes" : "no", r.relative_error);
      std::fflush(stdout);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return latentkv::cli::run_main([&] { return run(argc, argv); });
}
