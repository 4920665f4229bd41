// latentkv-ppl: WikiText-style perplexity of a GGUF model with llama.cpp's protocol
// (see latentkv/eval/perplexity.h), on the CPU reference forward pass or the GPU engine.
#include <omp.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "common/args.h"
#include "common/json.h"
#include "common/kv_cache_args.h"
#include "common/openmp_env.h"
#include "latentkv/eval/perplexity.h"
#include "latentkv/eval/text_file.h"
#include "latentkv/gguf/gguf_file.h"
#include "latentkv/model/llama_forward.h"
#include "latentkv/model/llama_loader.h"
#include "latentkv/progress.h"
#include "latentkv/tokenizer/tokenizer.h"

namespace {

using namespace latentkv;

// --bos: whether windows start with BOS. "auto" follows the vocabulary's add_bos_token, exactly
// like llama.cpp's perplexity tool.
bool resolve_bos(const std::string& policy, const Tokenizer& tok) {
  if (policy == "auto") return tok.add_bos_by_default();
  if (policy == "on") {
    LKV_CHECK_ARG(tok.bos_id() >= 0, "--bos on: the vocabulary has no BOS token");
    return true;
  }
  LKV_CHECK_ARG(policy == "off", "--bos must be auto, on or off, got '", policy, "'");
  return false;
}

int run(int argc, char** argv) {
  std::string model_path, text_path, bos = "auto";
  int64_t ctx = 512, chunks = 0, threads = 0;
  bool json = false;
  cli::ArgParser args("latentkv-ppl",
                      "Perplexity of a Llama-family GGUF model on a UTF-8 text file, with "
                      "llama.cpp's protocol:\nnon-overlapping windows of --ctx tokens, the second "
                      "half of each window scored.");
  args.add_string("--model", "M.gguf", "model file", &model_path, true);
  args.add_string("--text", "FILE", "UTF-8 text to evaluate (e.g. wikitext-2 test.txt)", &text_path,
                  true);
  args.add_int("--ctx", "N", "window length in tokens", &ctx);
  args.add_int("--chunks", "N", "evaluate only the first N windows (default: all)", &chunks);
  cli::KvCacheArgs kv;
  kv.add_to(args);
  args.add_string("--bos", "auto|on|off",
                  "start every window with BOS (auto: as the vocabulary's add_bos_token says, "
                  "like llama.cpp)",
                  &bos);
  args.add_int("--threads", "T", "CPU threads (default: all cores)", &threads);
  args.add_flag("--json", "print one JSON object with the results as the last line", &json);
  args.set_epilog(
      "example:\n  latentkv-ppl --model models/SmolLM2-135M-Instruct.Q4_1.gguf \\\n"
      "      --text ../shared/data/wikitext-2/test.txt --ctx 512 --chunks 40\n"
      "  latentkv-ppl ... --compressed smollm2-50.lkv      (latent cache of latentkv-compress)\n"
      "  latentkv-ppl ... --kv-cache kivi --kivi-bits 2    (quantization-only baseline)\n"
      "  latentkv-ppl ... --device cpu                     (the fp32 CPU reference)");
  if (const int rc = args.parse(argc, argv); rc >= 0) return rc;
  LKV_CHECK_ARG(threads >= 0, "--threads must be >= 1, got ", threads);
  set_num_threads(static_cast<int>(threads));

  PerplexityOptions opt;
  opt.ctx = ctx;
  if (args.given("--chunks")) opt.max_chunks = chunks;
  kv.validate(args);

  // Everything that can be rejected is checked before the weights are dequantized.
  const std::string text = read_text_file(text_path);
  GgufFile file(model_path);
  const LlamaConfig config = read_llama_config(file);
  const Tokenizer tokenizer = Tokenizer::from_gguf(file);
  const bool add_bos = resolve_bos(bos, tokenizer);
  const std::vector<TokenId> tokens = perplexity_tokens(tokenizer, text, add_bos);
  const int64_t windows = perplexity_windows(static_cast<int64_t>(tokens.size()), opt, config);
  if (add_bos) opt.window_start_token = tokenizer.bos_id();
  kv.open(model_path, config);

  LlamaWeights weights;
  {
    ProgressBar bar("loading", "layers");
    weights = load_llama(file, bar.callback());
  }
  std::unique_ptr<CausalLm> model;
  {
    std::unique_ptr<ProgressBar> bar;
    if (kv.gpu()) bar = std::make_unique<ProgressBar>("uploading to the GPU", "layers");
    model = kv.make_model_on_device(weights, ctx, bar ? bar->callback() : ProgressFn{});
  }
  std::fprintf(stderr, "ppl: %s: %lld tokens, ctx %lld, %lld windows, BOS %s, KV %s, %d threads\n",
               text_path.c_str(), static_cast<long long>(tokens.size()),
               static_cast<long long>(ctx), static_cast<long long>(windows), add_bos ? "on" : "off",
               kv.describe().c_str(), omp_get_max_threads());
  PerplexityResult r;
  {
    ProgressBar bar("perplexity", "windows");
    opt.progress = bar.callback();
    r = evaluate_perplexity(*model, tokens, opt);
  }

  std::printf("model:          %s\n", model_path.c_str());
  std::printf("text:           %s (%zu tokens)\n", text_path.c_str(), tokens.size());
  std::printf("ctx:            %lld, %lld windows, BOS %s, KV cache %s\n",
              static_cast<long long>(r.ctx), static_cast<long long>(r.chunks),
              add_bos ? "on" : "off", kv.describe().c_str());
  std::printf("KV bytes/token: %.1f (fp16 baseline %lld, %.2f %%)\n", kv.bytes_per_token(),
              static_cast<long long>(kv.baseline_bytes_per_token()),
              100.0 * kv.bytes_per_token() / kv.baseline_bytes_per_token());
  std::printf("perplexity:     %.4f +/- %.4f\n", r.ppl, r.ppl_stderr);
  std::printf("tokens scored:  %lld\n", static_cast<long long>(r.tokens_scored));
  std::printf("speed:          %.1f tokens/s (%lld tokens in %.2f s, %s)\n", r.tokens_per_second,
              static_cast<long long>(r.tokens_processed), r.seconds,
              kv.gpu() ? "GPU" : str_cat(omp_get_max_threads(), " threads").c_str());
  if (json) {
    cli::JsonObject j;
    j.add("ppl", r.ppl)
        .add("ppl_stderr", r.ppl_stderr)
        .add("mean_nll", r.mean_nll)
        .add("ctx", r.ctx)
        .add("chunks", r.chunks)
        .add("tokens_scored", r.tokens_scored)
        .add("tokens_processed", r.tokens_processed)
        .add("seconds", r.seconds)
        .add("tokens_per_second", r.tokens_per_second)
        .add("threads", omp_get_max_threads())
        .add("device", kv.gpu() ? "cuda" : "cpu")
        .add("kv_cache", kv.kind())
        .add("kv_cache_config", kv.describe())
        .add("kv_bytes_per_token", kv.bytes_per_token())
        .add("baseline_kv_bytes_per_token", kv.baseline_bytes_per_token())
        .add("bos", add_bos)
        .add("model", model_path)
        .add("text", text_path);
    std::printf("%s\n", j.str().c_str());
  }
  return cli::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  latentkv::cli::limit_openmp_spinning(argv);
  return latentkv::cli::run_main([&] { return run(argc, argv); });
}
