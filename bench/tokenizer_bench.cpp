// Tokenizer throughput on the default model's vocabulary (SmolLM2) and WikiText-2 test text.
//
// Paths follow the tests' convention: $LATENTKV_MODEL, else <source>/models/SmolLM2-135M-
// Instruct.Q4_1.gguf; $LATENTKV_DATA_DIR, else <source>/../shared/data/wikitext-2. Each
// benchmark reports bytes/s of text (encode: input bytes; decode: output bytes).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "latentkv/gguf/gguf_file.h"
#include "latentkv/tokenizer/tokenizer.h"

namespace {

using latentkv::EncodeOptions;
using latentkv::GgufFile;
using latentkv::Tokenizer;

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

std::string model_path() {
  return env_or("LATENTKV_MODEL",
                std::string(LATENTKV_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf");
}

std::string wikitext_test_path() {
  return env_or("LATENTKV_DATA_DIR",
                std::string(LATENTKV_SOURCE_DIR) + "/../shared/data/wikitext-2") +
         "/test.txt";
}

// Loaded once; null (with the reason in *error) when the model or text is missing.
const Tokenizer* tokenizer(std::string* error) {
  static std::string load_error;
  static const std::unique_ptr<Tokenizer> t = []() -> std::unique_ptr<Tokenizer> {
    try {
      return std::make_unique<Tokenizer>(Tokenizer::from_gguf(GgufFile(model_path())));
    } catch (const std::exception& e) {
      load_error = e.what();
      return nullptr;
    }
  }();
  *error = load_error;
  return t.get();
}

const std::string& wikitext_test(std::string* error) {
  static std::string load_error;
  static const std::string text = [] {
    std::ifstream in(wikitext_test_path(), std::ios::binary);
    if (!in) load_error = "cannot read " + wikitext_test_path();
    std::stringstream buf;
    buf << in.rdbuf();
    return buf.str();
  }();
  *error = load_error;
  return text;
}

bool setup(benchmark::State& state, const Tokenizer** tok, const std::string** text) {
  std::string error;
  *tok = tokenizer(&error);
  if (*tok == nullptr) {
    state.SkipWithError(("model: " + error).c_str());
    return false;
  }
  *text = &wikitext_test(&error);
  if (!error.empty()) {
    state.SkipWithError(error.c_str());
    return false;
  }
  return true;
}

// The whole WikiText-2 test file (1.25 MB) in one encode() call, as latentkv-ppl does.
void BM_EncodeWikiText2Test(benchmark::State& state) {
  const Tokenizer* tok = nullptr;
  const std::string* text = nullptr;
  if (!setup(state, &tok, &text)) return;
  size_t n_tokens = 0;
  for (auto _ : state) {
    const std::vector<int32_t> ids = tok->encode(*text);
    n_tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text->size()));
  state.counters["tokens"] = static_cast<double>(n_tokens);
}
BENCHMARK(BM_EncodeWikiText2Test)->Unit(benchmark::kMillisecond)->MinTime(2.0);

// A chat-sized prompt (first 2 KiB of the file, cut at a line end): per-call cost with a cold
// per-call word cache, what generation pays once per prompt.
void BM_EncodePrompt(benchmark::State& state) {
  const Tokenizer* tok = nullptr;
  const std::string* text = nullptr;
  if (!setup(state, &tok, &text)) return;
  const std::string prompt = text->substr(0, text->rfind('\n', 2048) + 1);
  EncodeOptions opt;
  opt.parse_special = true;
  for (auto _ : state) benchmark::DoNotOptimize(tok->encode(prompt, opt).data());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * prompt.size()));
}
BENCHMARK(BM_EncodePrompt)->Unit(benchmark::kMicrosecond);

void BM_DecodeWikiText2Test(benchmark::State& state) {
  const Tokenizer* tok = nullptr;
  const std::string* text = nullptr;
  if (!setup(state, &tok, &text)) return;
  const std::vector<int32_t> ids = tok->encode(*text);
  for (auto _ : state) benchmark::DoNotOptimize(tok->decode(ids).data());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text->size()));
}
BENCHMARK(BM_DecodeWikiText2Test)->Unit(benchmark::kMillisecond);

// Building the tokenizer from an open GGUF (vocabulary maps and merge ranks).
void BM_FromGguf(benchmark::State& state) {
  std::string error;
  if (tokenizer(&error) == nullptr) {
    state.SkipWithError(("model: " + error).c_str());
    return;
  }
  const GgufFile file(model_path());
  for (auto _ : state) benchmark::DoNotOptimize(Tokenizer::from_gguf(file).n_vocab());
}
BENCHMARK(BM_FromGguf)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
