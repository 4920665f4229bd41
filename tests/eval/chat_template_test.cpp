#include "latentkv/eval/chat_template.h"

#include <gtest/gtest.h>

#include "latentkv/status.h"
#include "support/expect_error.h"

namespace latentkv {
namespace {

// SmolLM2-Instruct's tokenizer.chat_template, as stored in its GGUF.
const char* kSmolLm2Template =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}";

TEST(ChatTemplate, ReadsSmolLm2DefaultSystemPrompt) {
  const ChatTemplate t = parse_chat_template(kSmolLm2Template);
  EXPECT_EQ(t.default_system_prompt,
            "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
  EXPECT_EQ(format_chatml(t, "Hi!"),
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
            "Face<|im_end|>\n<|im_start|>user\nHi!<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplate, EscapedNewlinesAndNoDefaultSystem) {
  const ChatTemplate esc =
      parse_chat_template("{{ '<|im_start|>system\\nBe brief.<|im_end|>\\n' }}");
  EXPECT_EQ(esc.default_system_prompt, "Be brief.");
  const ChatTemplate none = parse_chat_template(
      "{% for m in messages %}{{'<|im_start|>' + m['role'] + '\n' + m['content'] + "
      "'<|im_end|>\n'}}{% endfor %}");
  EXPECT_EQ(none.default_system_prompt, "");
  EXPECT_EQ(format_chatml(none, "x"), "<|im_start|>user\nx<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplate, RejectsMissingOrForeignTemplates) {
  EXPECT_LKV_ERROR(parse_chat_template(""), StatusCode::kUnsupported, "no chat template");
  EXPECT_LKV_ERROR(parse_chat_template("[INST] {{ content }} [/INST]"), StatusCode::kUnsupported,
                   "not ChatML");
}

}  // namespace
}  // namespace latentkv
