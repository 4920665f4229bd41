// latentkv-logits: developer tool that dumps the CPU reference's logits for a token sequence, so
// that they can be compared with an independent implementation
// (scripts/check_logits_vs_hf.py).
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "common/args.h"
#include "common/openmp_env.h"
#include "latentkv/eval/text_file.h"
#include "latentkv/gguf/gguf_file.h"
#include "latentkv/model/llama_forward.h"
#include "latentkv/model/llama_loader.h"
#include "latentkv/tokenizer/tokenizer.h"

namespace {

using namespace latentkv;

std::vector<TokenId> read_token_ids(const std::string& path) {
  const std::string text = read_text_file(path);
  std::vector<TokenId> ids;
  size_t pos = 0;
  while (true) {
    pos = text.find_first_not_of(" \t\r\n", pos);
    if (pos == std::string::npos) break;
    const size_t end = text.find_first_of(" \t\r\n", pos);
    const std::string word = text.substr(pos, end - pos);
    char* stop = nullptr;
    const long v = std::strtol(word.c_str(), &stop, 10);
    LKV_CHECK_ARG(*stop == '\0' && v >= 0 && v <= INT32_MAX, path, ": '", word,
                  "' is not a token id");
    ids.push_back(static_cast<TokenId>(v));
    pos = end;
  }
  LKV_CHECK_ARG(!ids.empty(), path, " holds no token ids");
  return ids;
}

int run(int argc, char** argv) {
  std::string model_path, tokens_path, text_path, out_path, kv_dtype = "f32";
  int64_t n = 0, chunk = 0, threads = 0;
  cli::ArgParser args("latentkv-logits",
                      "Dumps next-token logits of the CPU reference forward pass as raw float32, "
                      "row-major [n, vocab_size].");
  args.add_string("--model", "M.gguf", "model file", &model_path, true);
  args.add_string("--tokens", "FILE", "token ids, whitespace-separated", &tokens_path);
  args.add_string("--text", "FILE", "UTF-8 text to tokenize instead of --tokens", &text_path);
  args.add_int("--n", "N", "use only the first N tokens (default: all)", &n);
  args.add_int("--chunk", "K",
               "feed K tokens per forward call (1 = token-by-token decoding; default: all at once)",
               &chunk);
  args.add_string("--kv-dtype", "f32|f16", "KV cache element type", &kv_dtype);
  args.add_int("--threads", "T", "CPU threads (default: all cores)", &threads);
  args.add_string("--out", "FILE", "output file (raw float32)", &out_path, true);
  if (const int rc = args.parse(argc, argv); rc >= 0) return rc;
  LKV_CHECK_ARG(tokens_path.empty() != text_path.empty(), "give exactly one of --tokens, --text");
  LKV_CHECK_ARG(n >= 0 && chunk >= 0 && threads >= 0, "--n, --chunk and --threads must be >= 0");
  set_num_threads(static_cast<int>(threads));

  GgufFile file(model_path);
  std::vector<TokenId> ids;
  if (!tokens_path.empty()) {
    ids = read_token_ids(tokens_path);
  } else {
    ids = Tokenizer::from_gguf(file).encode(read_text_file(text_path));
  }
  if (n > 0 && n < static_cast<int64_t>(ids.size())) ids.resize(n);
  const LlamaWeights weights = load_llama(file);
  LlamaForward model(weights, parse_kv_dtype(kv_dtype));
  const int64_t total = static_cast<int64_t>(ids.size()), step = chunk > 0 ? chunk : total;
  const int64_t vocab = weights.config.vocab_size;

  std::ofstream out(out_path, std::ios::binary);
  LKV_CHECK_ARG(out.good(), "cannot write ", out_path);
  MatrixRM logits;
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t at = 0; at < total; at += step) {
    const int64_t len = std::min(step, total - at);
    model.forward({ids.begin() + at, ids.begin() + at + len}, &logits);
    out.write(reinterpret_cast<const char*>(logits.data()),
              static_cast<std::streamsize>(sizeof(float) * len * vocab));
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  LKV_CHECK_ARG(out.good(), "error while writing ", out_path);
  std::fprintf(stderr, "logits: %lld tokens x %lld in %.2f s (%.1f tokens/s, %d threads)\n",
               static_cast<long long>(total), static_cast<long long>(vocab), secs, total / secs,
               omp_get_max_threads());
  std::printf("%lld %lld\n", static_cast<long long>(total), static_cast<long long>(vocab));
  return cli::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  latentkv::cli::limit_openmp_spinning(argv);
  return latentkv::cli::run_main([&] { return run(argc, argv); });
}
