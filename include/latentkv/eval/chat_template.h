// Chat prompts for instruction-tuned models. Only the ChatML format is implemented (SmolLM2,
// Qwen, ...): a Jinja interpreter is out of scope, so the model's `tokenizer.chat_template` is
// recognised rather than executed, and anything else is rejected clearly.
#pragma once

#include <string>

namespace latentkv {

/// What latentkv understood of a model's chat template.
struct ChatTemplate {
  /// System message the template inserts when the conversation has none (empty: none).
  std::string default_system_prompt;
};

/// Recognises a ChatML template (it must use <|im_start|> and <|im_end|>) and extracts its
/// default system message (the literal after "<|im_start|>system\n", up to "<|im_end|>").
/// Throws Error(kUnsupported) for an empty or non-ChatML template.
ChatTemplate parse_chat_template(const std::string& jinja);

/// The prompt text of a one-turn conversation, ready to be encoded with special tokens parsed:
/// "<|im_start|>system\n{system}<|im_end|>\n" (when there is a system message)
/// "<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n".
std::string format_chatml(const ChatTemplate& chat, const std::string& user_message);

}  // namespace latentkv
