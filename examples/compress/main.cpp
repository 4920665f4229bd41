// latentkv-compress: compresses the KV cache of a GGUF model (design §3): calibration statistics
// and Fisher scores on calibration text (both cached on disk), rank allocation under a KV-bytes
// budget, low-rank factors, optional latent quantization; writes a .lkv file that
// latentkv-ppl / latentkv-generate load with the original GGUF (--compressed).
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "common/args.h"
#include "common/json.h"
#include "common/openmp_env.h"
#include "latentkv/eval/perplexity.h"
#include "latentkv/eval/text_file.h"
#include "latentkv/fisher/fisher_calibration.h"
#include "latentkv/gguf/gguf_file.h"
#include "latentkv/hash.h"
#include "latentkv/model/llama_loader.h"
#include "latentkv/pipeline/cache_dir.h"
#include "latentkv/pipeline/calibration.h"
#include "latentkv/pipeline/compress_model.h"
#include "latentkv/pipeline/lkv_file.h"
#include "latentkv/pipeline/stage_cache.h"
#include "latentkv/progress.h"
#include "latentkv/tokenizer/tokenizer.h"

namespace {

using namespace latentkv;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Everything given on the command line besides the method knobs.
struct Args {
  std::string model, calib, out, preset = "latentkv", fisher_file, cache_dir, bos = "auto";
  double budget = 0, budget_bytes = 0, rank_fraction = 0;
  int64_t bits = 16, quant_group = 0, residual = 128, group_size = 0, granule = 16;
  int64_t calib_windows = 32, calib_ctx = 512, fisher_windows = 16, seq_windows = 8, threads = 0;
  std::string allocator, error_weight, key_grouping, value_method, fold, rotation, reduction;
  bool plain_svd = false, no_cache = false, json = false;
};

bool resolve_bos(const std::string& policy, const Tokenizer& tok) {
  if (policy == "auto") return tok.bos_id() >= 0 && tok.add_bos_by_default();
  if (policy == "on") {
    LKV_CHECK_ARG(tok.bos_id() >= 0, "--bos on: the vocabulary has no BOS token");
    return true;
  }
  LKV_CHECK_ARG(policy == "off", "--bos must be auto, on or off, got '", policy, "'");
  return false;
}

// The preset's options with every knob the user set on top. Throws on any bad value, before a
// file is opened.
CompressOptions build_options(const Args& a, const cli::ArgParser& p) {
  CompressOptions o = preset_options(a.preset);
  const int budgets =
      int{p.given("--budget")} + p.given("--budget-bytes") + p.given("--rank-fraction");
  LKV_CHECK_ARG(budgets == 1, "give exactly one of --budget, --budget-bytes, --rank-fraction");
  if (p.given("--budget")) o.budget = {BudgetSpec::Kind::kBytesFraction, a.budget};
  if (p.given("--budget-bytes")) o.budget = {BudgetSpec::Kind::kBytesPerToken, a.budget_bytes};
  if (p.given("--rank-fraction")) o.budget = {BudgetSpec::Kind::kRankFraction, a.rank_fraction};
  o.quant.bits = static_cast<int>(a.bits);
  o.quant.quant_group = static_cast<int>(a.quant_group);
  o.quant.residual = static_cast<int>(a.residual);
  o.group_size = static_cast<int>(a.group_size);
  o.granule = static_cast<int>(a.granule);
  if (!a.allocator.empty()) o.allocator = parse_allocator(a.allocator);
  if (!a.error_weight.empty()) o.error_weight = parse_error_weight(a.error_weight);
  if (!a.key_grouping.empty()) o.key_grouping = parse_grouping_method(a.key_grouping);
  if (!a.value_method.empty()) o.value_method = parse_value_method(a.value_method);
  if (!a.fold.empty()) o.fold = parse_fold_policy(a.fold);
  if (!a.rotation.empty()) o.rotation = parse_rotation_mode(a.rotation);
  if (!a.reduction.empty()) o.fisher_reduction = parse_fisher_reduction(a.reduction);
  if (a.plain_svd) o.whiten = false;
  o.validate();
  return o;
}

std::string ranks_text(const std::vector<int>& ranks) {
  std::string s;
  for (size_t i = 0; i < ranks.size(); ++i) s += (i ? "," : "") + std::to_string(ranks[i]);
  return s;
}

void print_table(const CompressedModel& m) {
  std::printf("\nlayer  rank_k  rank_v   err_k    err_v   folded\n");
  for (size_t l = 0; l < m.layers.size(); ++l) {
    const CompressedLayer& c = m.layers[l];
    std::printf("%5zu  %6s  %6s  %7.4f  %7.4f  %s\n", l, ranks_text(c.factors.key.ranks).c_str(),
                ranks_text(c.factors.value.ranks).c_str(), c.key_error, c.value_error,
                c.factors.folded() ? "yes" : "no");
  }
}

int run(int argc, char** argv) {
  Args a;
  cli::ArgParser p("latentkv-compress",
                   "Compresses the KV cache of a Llama-family GGUF model into low-rank (optionally "
                   "quantized)\nlatents and writes the factors to a .lkv file that latentkv-ppl "
                   "and latentkv-generate\nload with the same GGUF (--compressed).");
  p.add_string("--model", "M.gguf", "model file", &a.model, true);
  p.add_string("--calib", "FILE", "UTF-8 calibration text (e.g. wikitext-2 valid.txt)", &a.calib,
               true);
  p.add_string("--out", "C.lkv", "compressed model file to write", &a.out, true);
  p.add_double("--budget", "F", "keep this fraction of the fp16 KV bytes (scale/zero included)",
               &a.budget);
  p.add_double("--budget-bytes", "N", "at most N KV bytes per token over all layers",
               &a.budget_bytes);
  p.add_double("--rank-fraction", "F",
               "Palu's convention: keep this fraction of the rank; --bits then shrinks the bytes "
               "further",
               &a.rank_fraction);
  p.add_int("--bits", "B", "latent bits: 16 (fp16), 8, 4, 3 or 2", &a.bits);
  p.add_int("--quant-group", "N", "latent channels per scale/zero (0 = the whole group latent)",
            &a.quant_group);
  p.add_int("--residual", "N", "newest tokens kept in fp16 before quantization", &a.residual);
  p.add_int("--group-size", "G", "KV heads per low-rank group (0 = all: joint)", &a.group_size);
  p.add_string("--preset", "palu|recalkv|latentkv", "method preset (see --help epilog)", &a.preset);
  p.add_string("--allocator", "uniform|palu|greedy_error", "override the preset's allocator",
               &a.allocator);
  p.add_string("--error-weight", "fisher|fisher_per_input|none",
               "greedy_error: what weighs a group's truncation error", &a.error_weight);
  p.add_string("--reduction", "mean_square|rms", "Fisher score reduction", &a.reduction);
  p.add_string("--key-grouping", "consecutive|greedy|search|best_error",
               "how KV heads are grouped for keys", &a.key_grouping);
  p.add_string("--value-method", "svd|sequential_als", "how value factors are computed",
               &a.value_method);
  p.add_string("--fold", "cost|always|never", "fold B_v into W_o", &a.fold);
  p.add_string("--rotation", "hadamard|hadamard_or_random|random",
               "rotation folded into quantized latents", &a.rotation);
  p.add_int("--granule", "G", "ranks are multiples of G", &a.granule);
  p.add_flag("--plain-svd", "plain instead of whitened SVD (for comparison)", &a.plain_svd);
  p.add_string("--fisher", "FILE",
               "Fisher scores from this file (format: latentkv/fisher/fisher_scores.h) instead "
               "of computing them",
               &a.fisher_file);
  p.add_int("--calib-windows", "N", "calibration windows (Gram statistics)", &a.calib_windows);
  p.add_int("--calib-ctx", "N", "tokens per calibration window", &a.calib_ctx);
  p.add_int("--fisher-windows", "N", "windows of the Fisher backward pass", &a.fisher_windows);
  p.add_int("--seq-windows", "N", "windows of sequential value calibration (sequential_als)",
            &a.seq_windows);
  p.add_string("--bos", "auto|on|off", "start every calibration window with BOS", &a.bos);
  p.add_string("--cache-dir", "DIR",
               "cache of statistics and Fisher scores (default: $LATENTKV_CACHE_DIR, "
               "$XDG_CACHE_HOME/latentkv or ~/.cache/latentkv)",
               &a.cache_dir);
  p.add_flag("--no-cache", "neither read nor write the cache", &a.no_cache);
  p.add_int("--threads", "T", "CPU threads (default: all cores)", &a.threads);
  p.add_flag("--json", "print one JSON object with the results as the last line", &a.json);
  p.set_epilog(
      "presets:\n"
      "  palu      whitened SVD of joint KV-head groups, Palu's Fisher allocation (RMS scores),\n"
      "            Hadamard-rotated per-token quantization when --bits < 16\n"
      "  recalkv   palu + similarity grouping of keys and values refined by ALS on the inputs\n"
      "            of the compressed model (ReCalKV)\n"
      "  latentkv  (default) our allocation: greedy by whitened truncation error weighted by\n"
      "            Fisher score / mean squared layer input (chosen on held-out WikiText-2 valid)\n"
      "example:\n  latentkv-compress --model models/SmolLM2-135M-Instruct.Q4_1.gguf \\\n"
      "      --calib ../shared/data/wikitext-2/valid.txt --budget 0.5 --out smollm2-50.lkv");
  if (const int rc = p.parse(argc, argv); rc >= 0) return rc;
  CompressOptions options;
  try {  // a bad option value is a usage error (exit code 2), like a malformed one
    LKV_CHECK_ARG(a.threads >= 0, "--threads must be >= 1, got ", a.threads);
    LKV_CHECK_ARG(a.calib_windows >= 1 && a.fisher_windows >= 1 && a.seq_windows >= 1,
                  "--calib-windows, --fisher-windows and --seq-windows must be >= 1");
    LKV_CHECK_ARG(a.calib_ctx >= 2, "--calib-ctx must be >= 2, got ", a.calib_ctx);
    options = build_options(a, p);
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return cli::kExitUsage;
  }
  set_num_threads(static_cast<int>(a.threads));
  const auto t_start = Clock::now();

  // Everything that can be rejected is checked before the weights are dequantized.
  const std::string text = read_text_file(a.calib);
  GgufFile file(a.model);
  const LlamaConfig config = read_llama_config(file);
  LKV_CHECK_ARG(a.calib_ctx <= config.context_length, "--calib-ctx ", a.calib_ctx,
                " exceeds the model's context length ", config.context_length);
  LKV_CHECK_ARG(options.group_size == 0 || (options.group_size <= config.num_kv_heads &&
                                            config.num_kv_heads % options.group_size == 0),
                "--group-size ", options.group_size, " does not divide the model's ",
                config.num_kv_heads, " KV heads");
  const Tokenizer tokenizer = Tokenizer::from_gguf(file);
  const std::string model_sha = sha256_file(a.model);
  const std::string text_sha = sha256_hex(text.data(), text.size());
  CalibrationWindows cw;
  cw.num_windows = static_cast<int>(a.calib_windows);
  cw.window_len = static_cast<int>(a.calib_ctx);
  cw.bos = resolve_bos(a.bos, tokenizer);
  const std::vector<TokenId> tokens = perplexity_tokens(tokenizer, text, false);
  const auto windows = tokenize_calibration_windows(tokens, cw, tokenizer.bos_id());
  CalibrationWindows fw = cw;
  fw.num_windows = static_cast<int>(a.fisher_windows);
  std::vector<std::vector<TokenId>> fisher_windows;
  FisherScores loaded_fisher;
  const bool fisher_needed = options.needs_fisher();
  if (fisher_needed && !a.fisher_file.empty()) {
    loaded_fisher = load_fisher_scores(a.fisher_file);
    loaded_fisher.check_for(config, model_sha);
  } else if (fisher_needed) {
    fisher_windows = tokenize_calibration_windows(tokens, fw, tokenizer.bos_id());
  }
  const std::string dir = a.no_cache ? "" : (a.cache_dir.empty() ? cache_dir() : a.cache_dir);

  LlamaWeights weights;
  {
    ProgressBar bar("loading", "layers");
    weights = load_llama(file, bar.callback());
  }
  const double load_s = seconds_since(t_start);
  std::fprintf(stderr, "compress: %s, preset %s, %s, bits %d, %d threads\n", config.name.c_str(),
               options.preset.c_str(), options.budget.describe().c_str(), options.quant.bits,
               omp_get_max_threads());

  auto t = Clock::now();
  CacheOutcome calib_cache;
  const CalibStats stats = cached_calib_stats(
      dir, model_sha, calibration_data_key(text_sha, cw),
      [&] {
        ProgressBar bar("calibration", "windows");
        return collect_calib_stats(weights, windows, bar.callback());
      },
      &calib_cache);
  const double calib_s = seconds_since(t);
  if (!calib_cache.note.empty()) std::fprintf(stderr, "note: %s\n", calib_cache.note.c_str());
  std::fprintf(stderr, "calibration: %s windows of %d tokens (%s, %.1f s)\n",
               std::to_string(cw.num_windows).c_str(), cw.window_len,
               calib_cache.hit ? "cached" : "computed", calib_s);

  t = Clock::now();
  CacheOutcome fisher_cache;
  FisherScores fisher;
  std::string fisher_source = "not needed";
  if (fisher_needed && !a.fisher_file.empty()) {
    fisher = loaded_fisher;
    fisher_source = "file " + a.fisher_file;
  } else if (fisher_needed) {
    fisher = cached_fisher_scores(
        dir, model_sha, calibration_data_key(text_sha, fw), options.fisher_reduction,
        [&] {
          ProgressBar bar("fisher", "windows");
          return accumulate_fisher(weights, fisher_windows, bar.callback());
        },
        &fisher_cache);
    fisher_source = str_cat(fw.describe(), " windows of ", a.calib, ", ",
                            fisher_reduction_name(options.fisher_reduction));
    if (!fisher_cache.note.empty()) std::fprintf(stderr, "note: %s\n", fisher_cache.note.c_str());
    std::fprintf(stderr, "fisher: %d windows (%s, %.1f s)\n", fw.num_windows,
                 fisher_cache.hit ? "cached" : "computed", seconds_since(t));
  }
  const double fisher_s = seconds_since(t);

  CompressInputs in;
  in.weights = &weights;
  in.base_sha256 = model_sha;
  in.stats = &stats;
  in.fisher = fisher_needed ? &fisher : nullptr;
  if (options.value_method == ValueMethod::kSequentialAls) {
    CalibrationWindows sw = cw;
    sw.num_windows = static_cast<int>(a.seq_windows);
    in.sequential_windows = tokenize_calibration_windows(tokens, sw, tokenizer.bos_id());
  }
  in.recipe = {
      {"calibration", str_cat(cw.describe(), " windows of ", a.calib, " (sha256 ", text_sha, ")")},
      {"fisher", fisher_source}};
  CompressReport report;
  CompressedModel model;
  {
    ProgressBar bar("decomposition", "layers");
    ProgressBar seq("sequential calibration", "windows");
    CompressProgress progress;
    progress.decompose = bar.callback();
    progress.sequential = seq.callback();
    model = compress_model(in, options, progress, &report);
  }
  t = Clock::now();
  save_compressed_model(model, a.out);
  const double write_s = seconds_since(t);

  print_table(model);
  const int64_t bytes = model.kv_bytes_per_token(), fp16 = model.fp16_kv_bytes_per_token();
  std::printf("\nmodel:          %s (sha256 %s)\n", a.model.c_str(), model_sha.c_str());
  std::printf("preset:         %s, allocator %s, group_size %d, bits %d\n", options.preset.c_str(),
              allocator_name(options.allocator),
              options.group_size == 0 ? config.num_kv_heads : options.group_size,
              options.quant.bits);
  std::printf("budget:         %s\n", options.budget.describe().c_str());
  std::printf("KV bytes/token: %lld (fp16 baseline %lld, %.2f %% kept)\n",
              static_cast<long long>(bytes), static_cast<long long>(fp16), 100.0 * bytes / fp16);
  std::printf("total rank:     %lld of %lld\n",
              static_cast<long long>(report.allocation.total_rank()),
              static_cast<long long>(2) * config.n_layers * config.num_kv_heads * config.head_dim);
  if (!report.damped_layers.empty())
    std::printf("damped Gram:    %zu layers\n", report.damped_layers.size());
  std::printf("folded B_v:     %d of %d layers\n", report.folded_layers, config.n_layers);
  std::printf(
      "wall time:      load %.1f s, calibration %.1f s%s, fisher %.1f s%s, "
      "decomposition %.1f s, sequential %.1f s, write %.2f s\n",
      load_s, calib_s, calib_cache.hit ? " (cached)" : "", fisher_s,
      fisher_cache.hit ? " (cached)" : "", report.decompose_seconds, report.sequential_seconds,
      write_s);
  std::printf("written:        %s\n", a.out.c_str());
  if (a.json) {
    std::vector<cli::JsonObject> layers;
    for (const CompressedLayer& l : model.layers) {
      cli::JsonObject j;
      j.add("rank_k", std::vector<double>(l.factors.key.ranks.begin(), l.factors.key.ranks.end()))
          .add("rank_v",
               std::vector<double>(l.factors.value.ranks.begin(), l.factors.value.ranks.end()))
          .add("err_k", l.key_error)
          .add("err_v", l.value_error)
          .add("folded", l.factors.folded());
      layers.push_back(j);
    }
    cli::JsonObject j;
    j.add("out", a.out)
        .add("preset", options.preset)
        .add("allocator", allocator_name(options.allocator))
        .add("bits", options.quant.bits)
        .add("budget", options.budget.describe())
        .add("kv_bytes_per_token", bytes)
        .add("baseline_kv_bytes_per_token", fp16)
        .add("kept_fraction", static_cast<double>(bytes) / fp16)
        .add("total_rank", report.allocation.total_rank())
        .add("calibration_cached", calib_cache.hit)
        .add("fisher_cached", fisher_cache.hit)
        .add("load_seconds", load_s)
        .add("calibration_seconds", calib_s)
        .add("fisher_seconds", fisher_s)
        .add("decompose_seconds", report.decompose_seconds)
        .add("sequential_seconds", report.sequential_seconds)
        .add("layers", layers);
    std::printf("%s\n", j.str().c_str());
  }
  return cli::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  latentkv::cli::limit_openmp_spinning(argv);
  return latentkv::cli::run_main([&] { return run(argc, argv); });
}
