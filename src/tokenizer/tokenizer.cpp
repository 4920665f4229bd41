#include "latentkv/tokenizer/tokenizer.h"

#include <algorithm>
#include <array>
#include <bitset>
#include <cstdio>
#include <cstring>
#include <unordered_map>

#include "latentkv/status.h"
#include "latentkv/tokenizer/bpe.h"
#include "latentkv/tokenizer/byte_level.h"
#include "latentkv/tokenizer/unicode.h"

namespace latentkv {

namespace {

// A token matched verbatim in the input instead of going through BPE.
struct LiteralToken {
  std::string text;
  int32_t id;
  bool control;  // matched only with EncodeOptions::parse_special
};

void check_special_id(int32_t id, const char* name, size_t n_vocab) {
  if (id < -1 || (id >= 0 && static_cast<size_t>(id) >= n_vocab)) {
    LKV_THROW(StatusCode::kCorruptData, "tokenizer: ", name, " token id ", id,
              " is outside the vocabulary (", n_vocab, " tokens)");
  }
}

}  // namespace

struct Tokenizer::Impl {
  PreTokenizerKind pre = PreTokenizerKind::kGpt2;
  std::vector<std::string> bytes;  // per token: the raw bytes it stands for
  std::vector<TokenType> types;
  std::unordered_map<std::string, int32_t> ids;  // vocabulary text -> id (last one wins)
  std::array<int32_t, 256> byte_ids{};           // byte -> id of its single-byte token, or -1
  BpeMerges merges;
  std::vector<LiteralToken> literals;       // longest first, so the first match at a position wins
  std::bitset<256> literal_first_bytes[2];  // [parse_special]: bytes that can start a match
  int32_t bos = -1, eos = -1, unk = -1, pad = -1;
  bool add_bos = false;

  int32_t id_of(const std::string& text) const {
    const auto it = ids.find(text);
    return it == ids.end() ? -1 : it->second;
  }
  void check_id(int32_t id) const {
    LKV_CHECK_ARG(id >= 0 && static_cast<size_t>(id) < bytes.size(), "token id ", id,
                  " is outside the vocabulary (", bytes.size(), " tokens)");
  }
  // Encodes a stretch without literal tokens; `text` is a view into `whole` (for messages).
  void encode_plain(std::string_view text, std::string_view whole, std::vector<int32_t>* out) const;
};

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_vocab(const TokenizerVocab& vocab) {
  if (vocab.model != "gpt2") {
    LKV_THROW(StatusCode::kUnsupported, "tokenizer model '", vocab.model,
              "' is not supported (only byte-level BPE, 'gpt2')");
  }
  auto impl = std::make_unique<Impl>();
  impl->pre = pre_tokenizer_from_name(vocab.pre);
  const size_t n = vocab.tokens.size();
  if (n == 0 || n > static_cast<size_t>(INT32_MAX)) {
    LKV_THROW(StatusCode::kCorruptData, "tokenizer: vocabulary has ", n, " tokens");
  }
  if (!vocab.token_types.empty() && vocab.token_types.size() != n) {
    LKV_THROW(StatusCode::kCorruptData, "tokenizer: ", vocab.token_types.size(),
              " token types for ", n, " tokens");
  }
  check_special_id(vocab.bos_id, "BOS", n);
  check_special_id(vocab.eos_id, "EOS", n);
  check_special_id(vocab.unk_id, "unknown", n);
  check_special_id(vocab.pad_id, "padding", n);

  impl->bytes.resize(n);
  impl->types.resize(n, TokenType::kNormal);
  impl->ids.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string& text = vocab.tokens[i];
    const auto id = static_cast<int32_t>(i);
    if (!vocab.token_types.empty()) {
      const int32_t t = vocab.token_types[i];
      if (t < static_cast<int32_t>(TokenType::kNormal) ||
          t > static_cast<int32_t>(TokenType::kByte)) {
        LKV_THROW(StatusCode::kCorruptData, "tokenizer: token ", i, " has unknown type ", t);
      }
      impl->types[i] = static_cast<TokenType>(t);
    }
    const TokenType type = impl->types[i];
    if (type == TokenType::kByte) {
      LKV_THROW(StatusCode::kCorruptData, "tokenizer: token ", i,
                " is a SentencePiece byte token, which a byte-level BPE vocabulary cannot hold");
    }
    if (type == TokenType::kNormal) {
      if (!byte_level::to_bytes(text, &impl->bytes[i]) || text.empty()) {
        LKV_THROW(StatusCode::kCorruptData, "tokenizer: normal token ", i, " '", text,
                  "' is not spelled in the byte-level alphabet");
      }
    } else {
      // Control, user-defined, unknown and unused tokens are stored as plain text.
      if (unicode::find_invalid_utf8(text) != std::string_view::npos) {
        LKV_THROW(StatusCode::kCorruptData, "tokenizer: token ", i, " is not valid UTF-8");
      }
      impl->bytes[i] = text;
      if ((type == TokenType::kControl || type == TokenType::kUserDefined) && !text.empty()) {
        impl->literals.push_back({text, id, type == TokenType::kControl});
      }
    }
    impl->ids[text] = id;
  }

  // Some vocabularies lack a few byte tokens (SmolLM2 has none for 21 bytes: six rare control
  // characters and lead bytes of unassigned planes); encode() rejects text that needs them.
  for (int b = 0; b < 256; ++b) {
    const int32_t id = impl->id_of(std::string(byte_level::symbol(static_cast<uint8_t>(b))));
    impl->byte_ids[b] = (id >= 0 && impl->types[id] == TokenType::kNormal) ? id : -1;
  }

  std::string left, right;
  for (size_t r = 0; r < vocab.merges.size(); ++r) {
    const std::string& m = vocab.merges[r];
    const size_t space = m.find(' ');
    if (space == 0 || space == std::string::npos || space + 1 == m.size() ||
        m.find(' ', space + 1) != std::string::npos) {
      LKV_THROW(StatusCode::kCorruptData, "tokenizer: merge ", r, " '", m,
                "' is not two tokens separated by one space");
    }
    left.assign(m, 0, space);
    right.assign(m, space + 1);
    const int32_t l = impl->id_of(left), rt = impl->id_of(right),
                  merged = impl->id_of(left + right);
    if (l < 0 || rt < 0 || merged < 0) {
      LKV_THROW(StatusCode::kCorruptData, "tokenizer: merge ", r, " '", m,
                "' uses or makes a token that is not in the vocabulary");
    }
    impl->merges.add(l, rt, merged);
  }

  std::stable_sort(
      impl->literals.begin(), impl->literals.end(),
      [](const LiteralToken& a, const LiteralToken& b) { return a.text.size() > b.text.size(); });
  for (const LiteralToken& t : impl->literals) {
    const auto first = static_cast<uint8_t>(t.text[0]);
    impl->literal_first_bytes[1].set(first);
    if (!t.control) impl->literal_first_bytes[0].set(first);
  }
  impl->bos = vocab.bos_id;
  impl->eos = vocab.eos_id;
  impl->unk = vocab.unk_id;
  impl->pad = vocab.pad_id;
  impl->add_bos = vocab.add_bos;
  return Tokenizer(std::move(impl));
}

void Tokenizer::Impl::encode_plain(std::string_view text, std::string_view whole,
                                   std::vector<int32_t>* out) const {
  std::vector<std::string_view> pieces;
  pre_tokenize(text, pre, &pieces);
  // Natural text repeats its words; the merged ids of each distinct piece are computed once per
  // call. Keys view `text`, which outlives the cache.
  std::unordered_map<std::string_view, std::vector<int32_t>> cache;
  constexpr size_t kMaxCached = size_t{1} << 18;
  std::vector<int32_t> symbols;
  for (std::string_view piece : pieces) {
    const auto hit = cache.find(piece);
    if (hit != cache.end()) {
      out->insert(out->end(), hit->second.begin(), hit->second.end());
      continue;
    }
    symbols.resize(piece.size());
    for (size_t i = 0; i < piece.size(); ++i) {
      const auto byte = static_cast<uint8_t>(piece[i]);
      symbols[i] = byte_ids[byte];
      if (symbols[i] < 0) {
        char hex[8];
        std::snprintf(hex, sizeof(hex), "0x%02X", byte);
        LKV_THROW(StatusCode::kInvalidArgument, "text has byte ", hex, " at offset ",
                  piece.data() + i - whole.data(), ", for which the vocabulary has no token");
      }
    }
    merges.apply(&symbols);
    out->insert(out->end(), symbols.begin(), symbols.end());
    if (cache.size() >= kMaxCached) cache.clear();
    cache.emplace(piece, symbols);
  }
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, const EncodeOptions& options) const {
  unicode::check_utf8(text, "text");
  const Impl& im = *impl_;
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  if (options.add_bos) {
    LKV_CHECK_ARG(im.bos >= 0, "add_bos asked but the vocabulary has no BOS token");
    out.push_back(im.bos);
  }
  // Split at literal tokens: at each position the longest one that matches wins (leftmost-
  // longest, as HF's added-token matcher). Stretches between matches go through BPE.
  const std::bitset<256>& first = im.literal_first_bytes[options.parse_special ? 1 : 0];
  size_t plain_begin = 0;
  if (first.any()) {
    for (size_t pos = 0; pos < text.size();) {
      const LiteralToken* match = nullptr;
      if (first.test(static_cast<uint8_t>(text[pos]))) {
        for (const LiteralToken& t : im.literals) {
          if ((t.control && !options.parse_special) || t.text.size() > text.size() - pos) continue;
          if (std::memcmp(text.data() + pos, t.text.data(), t.text.size()) == 0) {
            match = &t;
            break;
          }
        }
      }
      if (match == nullptr) {
        ++pos;
        continue;
      }
      if (pos > plain_begin) {
        im.encode_plain(text.substr(plain_begin, pos - plain_begin), text, &out);
      }
      out.push_back(match->id);
      pos += match->text.size();
      plain_begin = pos;
    }
  }
  if (plain_begin < text.size()) im.encode_plain(text.substr(plain_begin), text, &out);
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (int32_t id : ids) out += token_bytes(id);
  return out;
}

const std::string& Tokenizer::token_bytes(int32_t id) const {
  impl_->check_id(id);
  return impl_->bytes[id];
}

int32_t Tokenizer::n_vocab() const { return static_cast<int32_t>(impl_->bytes.size()); }

TokenType Tokenizer::token_type(int32_t id) const {
  impl_->check_id(id);
  return impl_->types[id];
}

std::optional<int32_t> Tokenizer::find_token(std::string_view text) const {
  const int32_t id = impl_->id_of(std::string(text));
  return id < 0 ? std::nullopt : std::optional<int32_t>(id);
}

int32_t Tokenizer::bos_id() const { return impl_->bos; }
int32_t Tokenizer::eos_id() const { return impl_->eos; }
int32_t Tokenizer::unk_id() const { return impl_->unk; }
int32_t Tokenizer::pad_id() const { return impl_->pad; }
bool Tokenizer::add_bos_by_default() const { return impl_->add_bos; }
PreTokenizerKind Tokenizer::pre_tokenizer() const { return impl_->pre; }

}  // namespace latentkv
