// The pre-tokenizer of byte-level BPE: splits text into pieces ("words") that BPE merges never
// cross. Implemented by hand (no regex library) with the Unicode classes of unicode.h.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace latentkv {

/// The split rules we support, named as in GGUF's `tokenizer.ggml.pre` (llama.cpp's names).
enum class PreTokenizerKind {
  /// "gpt2": the GPT-2 rule, i.e. HF ByteLevel(use_regex=true):
  ///   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  kGpt2,
  /// "smollm": every \p{N} code point is first isolated as its own piece (HF
  /// Digits(individual_digits=true)), then the GPT-2 rule runs on each stretch between them.
  /// SmolLM/SmolLM2 (and llama.cpp's "starcoder"/"refact" types) use this.
  kSmollm,
};

/// Maps a `tokenizer.ggml.pre` value to a kind. Throws Error(kUnsupported) naming the supported
/// values for anything else (including llama.cpp's "default", which is not the GPT-2 rule).
PreTokenizerKind pre_tokenizer_from_name(std::string_view name);

/// The GGUF name of a kind ("gpt2", "smollm").
const char* pre_tokenizer_name(PreTokenizerKind kind);

/// Appends to *pieces the pieces of `text`, in order; they are non-empty views into `text` and
/// concatenate back to it exactly. `text` must be valid UTF-8 (checked by the caller).
void pre_tokenize(std::string_view text, PreTokenizerKind kind,
                  std::vector<std::string_view>* pieces);

}  // namespace latentkv
