// latentkv-fisher: Fisher scores of every k_proj and v_proj of a GGUF model on calibration text
// (design §3.6), saved in the documented text format, and the rank allocation they imply.
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "common/args.h"
#include "common/json.h"
#include "latentkv/compress/rank_allocation.h"
#include "latentkv/eval/perplexity.h"
#include "latentkv/eval/text_file.h"
#include "latentkv/fisher/fisher_calibration.h"
#include "latentkv/fisher/fisher_scores.h"
#include "latentkv/gguf/gguf_file.h"
#include "latentkv/hash.h"
#include "latentkv/model/llama_forward.h"
#include "latentkv/model/llama_loader.h"
#include "latentkv/progress.h"
#include "latentkv/tokenizer/tokenizer.h"

namespace {

using namespace latentkv;

bool resolve_bos(const std::string& policy, const Tokenizer& tok) {
  if (policy == "auto") return tok.bos_id() >= 0 && tok.add_bos_by_default();
  if (policy == "on") {
    LKV_CHECK_ARG(tok.bos_id() >= 0, "--bos on: the vocabulary has no BOS token");
    return true;
  }
  LKV_CHECK_ARG(policy == "off", "--bos must be auto, on or off, got '", policy, "'");
  return false;
}

std::string ranks_text(const std::vector<int>& ranks) {
  std::string s;
  for (size_t i = 0; i < ranks.size(); ++i) s += (i ? "," : "") + std::to_string(ranks[i]);
  return s;
}

void print_allocation(const RankAllocation& a) {
  std::printf(
      "\n%s allocation: %lld of %lld budget bytes/token (%.2f %% of fp16 %lld), total "
      "rank %lld, rank target %lld\n",
      a.method.c_str(), static_cast<long long>(a.bytes_per_token),
      static_cast<long long>(a.budget_bytes_per_token), 100.0 * a.kept_fraction(),
      static_cast<long long>(a.fp16_bytes_per_token), static_cast<long long>(a.total_rank()),
      static_cast<long long>(a.rank_target));
  std::printf("layer  rank_k  rank_v\n");
  for (int l = 0; l < a.layout.n_layers; ++l) {
    std::printf("%5d  %6s  %6s\n", l, ranks_text(a.unit_ranks(l, false)).c_str(),
                ranks_text(a.unit_ranks(l, true)).c_str());
  }
}

cli::JsonObject allocation_json(const RankAllocation& a) {
  std::vector<double> ranks(a.ranks.begin(), a.ranks.end());
  cli::JsonObject j;
  j.add("method", a.method)
      .add("bytes_per_token", a.bytes_per_token)
      .add("budget_bytes_per_token", a.budget_bytes_per_token)
      .add("fp16_bytes_per_token", a.fp16_bytes_per_token)
      .add("rank_target", a.rank_target)
      .add("ranks", ranks);
  return j;
}

int run(int argc, char** argv) {
  std::string model_path, calib_path, out_path, fisher_path, bos = "auto",
                                                             reduction_name = "mean_square";
  int64_t windows = 8, ctx = 512, threads = 0, granule = 16, group_size = 0, bits = 16;
  double budget = 0;
  bool json = false;
  cli::ArgParser args("latentkv-fisher",
                      "Fisher scores of every k_proj and v_proj of a Llama-family GGUF model: "
                      "mean squared gradient\nof the next-token loss over calibration windows "
                      "(or Palu's RMS variant), and the rank\nallocation they imply.");
  args.add_string("--model", "M.gguf", "model file", &model_path, true);
  args.add_string("--calib", "FILE", "UTF-8 calibration text (e.g. wikitext-2 valid.txt)",
                  &calib_path);
  args.add_string("--fisher", "FILE", "load scores from this file instead of computing them",
                  &fisher_path);
  args.add_int("--windows", "N", "calibration windows, spread evenly over the text", &windows);
  args.add_int("--ctx", "N", "tokens per window", &ctx);
  args.add_string("--bos", "auto|on|off", "start every window with BOS", &bos);
  args.add_string("--reduction", "mean_square|rms",
                  "mean of squared gradients, or Palu's per-element RMS then mean",
                  &reduction_name);
  args.add_string("--out", "FILE", "write the scores here (text format of fisher_scores.h)",
                  &out_path);
  args.add_double("--budget", "F",
                  "also print the Palu and uniform rank allocations keeping this fraction of the "
                  "fp16 KV bytes",
                  &budget);
  args.add_int("--granule", "G", "rank granule of the allocation", &granule);
  args.add_int("--group-size", "G", "KV heads per group (default: all, Palu's fisher_uniform)",
               &group_size);
  args.add_int("--bits", "B", "latent bits for the allocation's byte count (16 = fp16)", &bits);
  args.add_int("--threads", "T", "CPU threads (default: all cores)", &threads);
  args.add_flag("--json", "print one JSON object with the results as the last line", &json);
  args.set_epilog(
      "example:\n  latentkv-fisher --model models/SmolLM2-135M-Instruct.Q4_1.gguf \\\n"
      "      --calib ../shared/data/wikitext-2/valid.txt --windows 8 --out fisher.txt "
      "--budget 0.5");
  if (const int rc = args.parse(argc, argv); rc >= 0) return rc;
  LKV_CHECK_ARG(threads >= 0, "--threads must be >= 1, got ", threads);
  LKV_CHECK_ARG(calib_path.empty() != fisher_path.empty(),
                "give either --calib (compute scores) or --fisher (load them)");
  LKV_CHECK_ARG(ctx >= 2 && windows >= 1, "--ctx must be >= 2 and --windows >= 1");
  set_num_threads(static_cast<int>(threads));
  const FisherReduction reduction = parse_fisher_reduction(reduction_name);

  GgufFile file(model_path);
  const LlamaConfig config = read_llama_config(file);
  const std::string model_id = sha256_file(model_path);
  AllocationSpec spec;
  if (args.given("--budget")) {
    spec.layout = KvLayout{config.n_layers, config.num_kv_heads, config.head_dim,
                           group_size > 0 ? static_cast<int>(group_size) : config.num_kv_heads};
    spec.granule = static_cast<int>(granule);
    spec.quant.bits = static_cast<int>(bits);
    spec.budget = KvBudget::fraction(budget);
    spec.validate();
  }

  FisherScores scores;
  double seconds = 0;
  if (!fisher_path.empty()) {
    scores = load_fisher_scores(fisher_path);
    scores.check_for(config, model_id);
  } else {
    LKV_CHECK_ARG(ctx <= config.context_length, "--ctx ", ctx, " exceeds the model's context ",
                  config.context_length);
    const Tokenizer tokenizer = Tokenizer::from_gguf(file);
    const bool add_bos = resolve_bos(bos, tokenizer);
    const std::vector<TokenId> text =
        perplexity_tokens(tokenizer, read_text_file(calib_path), false);
    const std::vector<std::vector<TokenId>> calib = calibration_windows(
        text, static_cast<int>(ctx), static_cast<int>(windows), add_bos ? tokenizer.bos_id() : -1);
    LlamaWeights weights;
    {
      ProgressBar bar("loading", "layers");
      weights = load_llama(file, bar.callback());
    }
    std::fprintf(stderr, "fisher: %s: %zu tokens, %lld windows of %lld, BOS %s, %d threads\n",
                 calib_path.c_str(), text.size(), static_cast<long long>(windows),
                 static_cast<long long>(ctx), add_bos ? "on" : "off", omp_get_max_threads());
    const auto start = std::chrono::steady_clock::now();
    FisherAccumulator acc(config);
    {
      ProgressBar bar("fisher", "windows");
      acc = accumulate_fisher(weights, calib, bar.callback());
    }
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    scores = acc.scores(reduction, model_id);
  }
  if (!out_path.empty()) save_fisher_scores(scores, out_path);

  std::printf("model:      %s (sha256 %s)\n", model_path.c_str(), model_id.c_str());
  std::printf("reduction:  %s, %lld windows\n", fisher_reduction_name(scores.reduction),
              static_cast<long long>(scores.num_samples));
  if (seconds > 0) {
    std::printf("time:       %.1f s (%.2f s per window of %lld tokens, %d threads)\n", seconds,
                seconds / windows, static_cast<long long>(ctx), omp_get_max_threads());
  }
  std::printf("layer  fisher_k      fisher_v      v/k\n");
  for (int l = 0; l < scores.n_layers(); ++l) {
    std::printf("%5d  %.4e  %.4e  %6.2f\n", l, scores.key[l], scores.value[l],
                scores.key[l] > 0 ? scores.value[l] / scores.key[l] : 0.0);
  }
  cli::JsonObject j;
  j.add("model", model_path)
      .add("model_sha256", model_id)
      .add("reduction", fisher_reduction_name(scores.reduction))
      .add("windows", scores.num_samples)
      .add("ctx", ctx)
      .add("seconds", seconds)
      .add("fisher_k", scores.key)
      .add("fisher_v", scores.value);
  if (args.given("--budget")) {
    const RankAllocation palu = allocate_palu(spec, scores.unit_scores());
    const RankAllocation uniform = allocate_uniform(spec);
    print_allocation(palu);
    print_allocation(uniform);
    j.add("allocations",
          std::vector<cli::JsonObject>{allocation_json(palu), allocation_json(uniform)});
  }
  if (json) std::printf("%s\n", j.str().c_str());
  return cli::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  return latentkv::cli::run_main([&] { return run(argc, argv); });
}
