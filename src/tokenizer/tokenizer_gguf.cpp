// Tokenizer::from_gguf: reads tokenizer.ggml.* into a TokenizerVocab.
#include "latentkv/gguf/gguf_file.h"
#include "latentkv/tokenizer/tokenizer.h"

namespace latentkv {

Tokenizer Tokenizer::from_gguf(const GgufFile& file) {
  TokenizerVocab v;
  v.model = file.get<std::string>("tokenizer.ggml.model");
  // The model and pre-tokenizer are checked before the big arrays are copied, so an unsupported
  // file fails fast with from_vocab's / pre_tokenizer_from_name's kUnsupported message.
  if (v.model != "gpt2") return from_vocab(v);
  v.pre = file.get<std::string>("tokenizer.ggml.pre");
  (void)pre_tokenizer_from_name(v.pre);
  for (std::string_view t : file.get_string_array("tokenizer.ggml.tokens"))
    v.tokens.emplace_back(t);
  for (std::string_view m : file.get_string_array("tokenizer.ggml.merges"))
    v.merges.emplace_back(m);
  if (file.has("tokenizer.ggml.token_type")) {
    v.token_types = file.get_array<int32_t>("tokenizer.ggml.token_type");
  }
  v.bos_id = file.get_or<int32_t>("tokenizer.ggml.bos_token_id", -1);
  v.eos_id = file.get_or<int32_t>("tokenizer.ggml.eos_token_id", -1);
  v.unk_id = file.get_or<int32_t>("tokenizer.ggml.unknown_token_id", -1);
  v.pad_id = file.get_or<int32_t>("tokenizer.ggml.padding_token_id", -1);
  v.add_bos = file.get_or<bool>("tokenizer.ggml.add_bos_token", false);
  return from_vocab(v);
}

}  // namespace latentkv
