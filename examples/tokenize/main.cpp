// latentkv-tokenize: token ids of a UTF-8 text file under a GGUF model's tokenizer.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

#include "common/args.h"
#include "common/json.h"
#include "latentkv/eval/text_file.h"
#include "latentkv/gguf/gguf_file.h"
#include "latentkv/status.h"
#include "latentkv/tokenizer/tokenizer.h"

namespace {

using namespace latentkv;

void write_ids(const std::string& path, const std::vector<int32_t>& ids) {
  std::ofstream out(path);
  if (!out) LKV_THROW(StatusCode::kIoError, "cannot create ", path);
  for (int32_t id : ids) out << id << '\n';
  out.flush();
  if (!out) LKV_THROW(StatusCode::kIoError, "error while writing ", path);
}

int run(int argc, char** argv) {
  std::string model_path, text_path, ids_out;
  bool parse_special = false, add_bos = false, json = false;
  cli::ArgParser args("latentkv-tokenize",
                      "Tokenizes a UTF-8 text file with the byte-level BPE tokenizer stored in a "
                      "GGUF model\nand prints the token count.");
  args.add_string("--model", "M.gguf", "model file (its tokenizer.ggml.* metadata)", &model_path,
                  true);
  args.add_string("--text", "FILE", "UTF-8 text to tokenize", &text_path, true);
  args.add_string("--ids-out", "F", "write the token ids to F, one per line", &ids_out);
  args.add_flag("--parse-special",
                "recognise control tokens such as <|im_start|> written in the text",
                &parse_special);
  args.add_flag("--add-bos", "put the BOS token first", &add_bos);
  args.add_flag("--json", "print one JSON object with the results as the last line", &json);
  args.set_epilog(
      "example:\n  latentkv-tokenize --model models/SmolLM2-135M-Instruct.Q4_1.gguf \\\n"
      "      --text ../shared/data/wikitext-2/test.txt --ids-out test.ids");
  if (const int rc = args.parse(argc, argv); rc >= 0) return rc;

  const std::string text = read_text_file(text_path);
  const Tokenizer tokenizer = Tokenizer::from_gguf(GgufFile(model_path));
  EncodeOptions opt;
  opt.parse_special = parse_special;
  opt.add_bos = add_bos;
  const auto start = std::chrono::steady_clock::now();
  const std::vector<int32_t> ids = tokenizer.encode(text, opt);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (!ids_out.empty()) write_ids(ids_out, ids);

  const double mb_per_s = static_cast<double>(text.size()) / 1e6 / seconds;
  std::printf("%zu tokens from %zu bytes (%.3f bytes/token), encoded in %.3f s (%.1f MB/s)\n",
              ids.size(), text.size(), static_cast<double>(text.size()) / ids.size(), seconds,
              mb_per_s);
  if (json) {
    cli::JsonObject o;
    o.add("tokens", static_cast<int64_t>(ids.size()))
        .add("bytes", static_cast<int64_t>(text.size()))
        .add("seconds", seconds)
        .add("mb_per_s", mb_per_s)
        .add("pre_tokenizer", pre_tokenizer_name(tokenizer.pre_tokenizer()));
    std::printf("%s\n", o.str().c_str());
  }
  return cli::kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  return latentkv::cli::run_main([&] { return run(argc, argv); });
}
