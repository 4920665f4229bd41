#include "latentkv/eval/chat_template.h"

#include "latentkv/status.h"

namespace latentkv {

namespace {
constexpr const char* kStart = "<|im_start|>";
constexpr const char* kEnd = "<|im_end|>";

// Jinja string literals may spell a newline as the two characters '\' 'n'.
std::string unescape_newlines(std::string s) {
  for (size_t p = s.find("\\n"); p != std::string::npos; p = s.find("\\n", p + 1))
    s.replace(p, 2, "\n");
  return s;
}
}  // namespace

ChatTemplate parse_chat_template(const std::string& jinja) {
  if (jinja.empty()) LKV_THROW(StatusCode::kUnsupported, "the model has no chat template");
  if (jinja.find(kStart) == std::string::npos || jinja.find(kEnd) == std::string::npos) {
    LKV_THROW(StatusCode::kUnsupported,
              "the model's chat template is not ChatML (<|im_start|>...<|im_end|>), the only "
              "format latentkv implements");
  }
  ChatTemplate chat;
  const std::string unescaped = unescape_newlines(jinja);
  const std::string head = std::string(kStart) + "system\n";
  const size_t at = unescaped.find(head);
  if (at != std::string::npos) {
    const size_t begin = at + head.size();
    const size_t end = unescaped.find(kEnd, begin);
    if (end != std::string::npos) chat.default_system_prompt = unescaped.substr(begin, end - begin);
    // A system header followed by template code (a variable) is not a default message.
    if (chat.default_system_prompt.find("{{") != std::string::npos ||
        chat.default_system_prompt.find("{%") != std::string::npos)
      chat.default_system_prompt.clear();
  }
  return chat;
}

std::string format_chatml(const ChatTemplate& chat, const std::string& user_message) {
  std::string out;
  if (!chat.default_system_prompt.empty())
    out += str_cat(kStart, "system\n", chat.default_system_prompt, kEnd, "\n");
  out += str_cat(kStart, "user\n", user_message, kEnd, "\n", kStart, "assistant\n");
  return out;
}

}  // namespace latentkv
