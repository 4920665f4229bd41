// Byte-level BPE tokenizer (GPT-2 style) as described by GGUF `tokenizer.ggml.*` metadata.
//
// Supported: tokenizer.ggml.model "gpt2" (byte-level BPE) with tokenizer.ggml.pre "gpt2" or
// "smollm" (see pre_tokenizer.h). Anything else, e.g. SentencePiece ("llama") vocabularies or
// other pre-tokenizers, is rejected with Error(kUnsupported).
//
// Encoding: the text must be valid UTF-8. It is split at special tokens (see EncodeOptions),
// each stretch between them is pre-tokenized, and each piece's bytes are merged by BPE rank.
// decode(encode(s)) == s for every string encode() accepts: all valid UTF-8 when the vocabulary
// has a token for each of the 256 bytes. Some vocabularies lack a few (SmolLM2: the control
// characters U+0004, U+0006, U+0013, U+0014, U+0016, U+001D and the lead bytes of the unassigned
// planes 4..13); text needing one is rejected with an error, never silently dropped (HF
// `tokenizers` drops such bytes; llama.cpp fails).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "latentkv/tokenizer/pre_tokenizer.h"

namespace latentkv {

class GgufFile;

/// Token types as stored in tokenizer.ggml.token_type (llama.cpp's values).
enum class TokenType : int32_t {
  kNormal = 1,  ///< byte-level spelled text, produced by BPE
  kUnknown = 2,
  kControl = 3,      ///< special token such as <|im_start|>; matched in text only on request
  kUserDefined = 4,  ///< added token matched in text always (as llama.cpp and HF do)
  kUnused = 5,
  kByte = 6,  ///< SentencePiece byte fallback (<0x0A>); not valid in a byte-level vocab
};

/// The tokenizer as plain data: what tokenizer.ggml.* holds.
struct TokenizerVocab {
  std::string model = "gpt2";        ///< tokenizer.ggml.model
  std::string pre;                   ///< tokenizer.ggml.pre
  std::vector<std::string> tokens;   ///< token text; normal tokens byte-level spelled
  std::vector<int32_t> token_types;  ///< one TokenType value per token; empty = all normal
  std::vector<std::string> merges;   ///< "left right", best (lowest rank) first
  int32_t bos_id = -1;               ///< -1 = none
  int32_t eos_id = -1;
  int32_t unk_id = -1;
  int32_t pad_id = -1;
  bool add_bos = false;  ///< tokenizer.ggml.add_bos_token: the model's wish
};

struct EncodeOptions {
  /// Put the BOS token first (error when the vocabulary has none).
  bool add_bos = false;
  /// Recognise control tokens (<|im_start|>, <|endoftext|>, ...) written in the text, as a chat
  /// template needs. Off: their text is encoded like any other text. User-defined tokens are
  /// recognised either way.
  bool parse_special = false;
};

class Tokenizer {
 public:
  /// Validates the vocabulary and builds the tokenizer. Throws Error: kUnsupported for a model or
  /// pre-tokenizer other than those listed at the top; kCorruptData when the data is inconsistent
  /// (types/tokens size mismatch, unknown token type, a normal token outside the byte alphabet,
  /// a merge that is not "left right" of known tokens, a special id out of range). The message
  /// names the offending token or merge.
  static Tokenizer from_vocab(const TokenizerVocab& vocab);
  /// Reads tokenizer.ggml.* from a GGUF file (required: model, tokens, merges, pre) and calls
  /// from_vocab. Missing keys: kNotFound; wrongly typed values: kCorruptData.
  static Tokenizer from_gguf(const GgufFile& file);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  /// Token ids of `text`. Throws Error(kInvalidArgument) when `text` is not valid UTF-8 (the
  /// message gives the offset of the first bad byte), when it holds a byte the vocabulary has no
  /// token for (offset given), or add_bos is asked without a BOS token.
  /// Thread-safe (const; no shared mutable state).
  std::vector<int32_t> encode(std::string_view text, const EncodeOptions& options = {}) const;

  /// The bytes the ids stand for, concatenated. Control tokens render as their text. A piece of
  /// a multi-byte character may end the result when the ids cut through one (streaming); the
  /// full sequence of an encode() result always decodes to valid UTF-8. Throws
  /// Error(kInvalidArgument) for an id outside [0, n_vocab).
  std::string decode(const std::vector<int32_t>& ids) const;
  /// The bytes of one token (same rules as decode).
  const std::string& token_bytes(int32_t id) const;

  int32_t n_vocab() const;
  TokenType token_type(int32_t id) const;
  /// Id of the token with exactly this (vocabulary) text, e.g. "<|im_end|>" or "Ġthe".
  std::optional<int32_t> find_token(std::string_view text) const;
  int32_t bos_id() const;  ///< -1 when none
  int32_t eos_id() const;
  int32_t unk_id() const;
  int32_t pad_id() const;
  /// tokenizer.ggml.add_bos_token of the model (encode() adds BOS only when asked).
  bool add_bos_by_default() const;
  PreTokenizerKind pre_tokenizer() const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace latentkv
