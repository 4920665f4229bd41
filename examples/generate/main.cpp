// latentkv-generate: text generation with a GGUF model on the CPU reference forward pass.
// Tokens are streamed to stdout as they are produced; statistics go to stderr.
#include <omp.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "common/args.h"
#include "common/kv_cache_args.h"
#include "common/openmp_env.h"
#include "latentkv/eval/chat_template.h"
#include "latentkv/eval/generate.h"
#include "latentkv/eval/utf8_stream.h"
#include "latentkv/gguf/gguf_file.h"
#include "latentkv/model/llama_forward.h"
#include "latentkv/model/llama_loader.h"
#include "latentkv/tokenizer/tokenizer.h"

namespace {

using namespace latentkv;

int run(int argc, char** argv) {
  std::string model_path, prompt;
  int64_t n_predict = 128, threads = 0, seed = 0;
  double temp = 0.0, top_p = 1.0;
  bool chat = false;
  cli::ArgParser args("latentkv-generate",
                      "Generates text from a prompt with a Llama-family GGUF model (greedy unless "
                      "--temp > 0).");
  args.add_string("--model", "M.gguf", "model file", &model_path, true);
  args.add_string("--prompt", "TEXT", "prompt text", &prompt, true);
  args.add_int("--n-predict", "N", "maximum number of tokens to generate", &n_predict);
  args.alias("-n", "--n-predict");
  args.add_double("--temp", "T", "sampling temperature (0 = greedy)", &temp);
  args.add_double("--top-p", "P", "nucleus sampling: keep the most probable tokens up to mass P",
                  &top_p);
  args.add_int("--seed", "S", "random seed for sampling", &seed);
  args.add_flag("--chat", "wrap the prompt in the model's chat template (ChatML) as a user turn",
                &chat);
  cli::KvCacheArgs kv;
  kv.add_to(args);
  args.add_int("--threads", "T", "CPU threads (default: all cores)", &threads);
  args.set_epilog(
      "example:\n  latentkv-generate --model models/SmolLM2-135M-Instruct.Q4_1.gguf --chat \\\n"
      "      --prompt \"What is the capital of France?\" -n 64\n"
      "  latentkv-generate ... --compressed smollm2-50.lkv   (latent KV cache)\n"
      "  latentkv-generate ... --device cpu                  (the fp32 CPU reference)");
  if (const int rc = args.parse(argc, argv); rc >= 0) return rc;
  LKV_CHECK_ARG(threads >= 0, "--threads must be >= 1, got ", threads);
  LKV_CHECK_ARG(seed >= 0, "--seed must be >= 0, got ", seed);
  set_num_threads(static_cast<int>(threads));

  GenerationOptions opt;
  opt.max_new_tokens = n_predict;
  opt.sampling.temperature = temp;
  opt.sampling.top_p = top_p;
  opt.sampling.seed = static_cast<uint64_t>(seed);
  const Sampler check_sampling(opt.sampling);  // rejects bad --temp / --top-p before loading
  LKV_CHECK_ARG(n_predict >= 1, "-n must be >= 1, got ", n_predict);
  kv.validate(args);

  GgufFile file(model_path);
  const Tokenizer tokenizer = Tokenizer::from_gguf(file);
  std::vector<TokenId> ids;
  EncodeOptions eo;
  eo.add_bos = tokenizer.add_bos_by_default();
  if (chat) {
    const ChatTemplate tmpl =
        parse_chat_template(file.get_or<std::string>("tokenizer.chat_template", ""));
    eo.parse_special = true;
    ids = tokenizer.encode(format_chatml(tmpl, prompt), eo);
    const auto im_end = tokenizer.find_token("<|im_end|>");
    LKV_CHECK_ARG(im_end.has_value(), "the vocabulary has no <|im_end|> token for --chat");
    opt.stop_tokens.push_back(*im_end);
  } else {
    LKV_CHECK_ARG(!prompt.empty(), "the prompt is empty");
    ids = tokenizer.encode(prompt, eo);
  }
  if (tokenizer.eos_id() >= 0) opt.stop_tokens.push_back(tokenizer.eos_id());

  kv.open(model_path, read_llama_config(file));
  const LlamaWeights weights = load_llama(file);
  // The GPU cache is sized for this prompt and generation, not the model's whole context.
  const int64_t max_seq_len = std::min<int64_t>(read_llama_config(file).context_length,
                                                static_cast<int64_t>(ids.size()) + n_predict);
  const std::unique_ptr<CausalLm> model = kv.make_model_on_device(weights, max_seq_len);
  Utf8Stream stream;
  if (!chat) std::fputs(prompt.c_str(), stdout);
  const GenerationStats s = generate(*model, ids, opt, [&](TokenId t) {
    std::fputs(stream.push(tokenizer.token_bytes(t)).c_str(), stdout);
    std::fflush(stdout);
  });
  std::fputs(stream.flush().c_str(), stdout);
  std::fputs("\n", stdout);
  std::fflush(stdout);
  std::fprintf(
      stderr,
      "prompt: %lld tokens in %.2f s (%.1f tokens/s); generated: %lld tokens "
      "(%.1f tokens/s); stop: %s; %s; KV %s, %.1f bytes/token (fp16 %lld)\n",
      static_cast<long long>(s.prompt_tokens), s.prompt_seconds, s.prompt_tokens_per_second(),
      static_cast<long long>(s.generated_tokens), s.generate_tokens_per_second(),
      s.hit_stop_token      ? "end of turn"
      : s.hit_context_limit ? "context full"
                            : "-n",
      kv.gpu() ? "GPU" : str_cat(omp_get_max_threads(), " threads").c_str(), kv.describe().c_str(),
      kv.bytes_per_token(), static_cast<long long>(kv.baseline_bytes_per_token()));
  return cli::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  latentkv::cli::limit_openmp_spinning(argv);
  return latentkv::cli::run_main([&] { return run(argc, argv); });
}
